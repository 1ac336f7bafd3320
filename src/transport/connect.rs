//! How a connection is made once TCP is up: through a proxy's CONNECT
//! tunnel when one is in force (`tunnel`), then TLS (or nothing, for plain
//! HTTP), over a socket held to the run's read deadlines (`pace`). ureq
//! hands its connector the TCP stream of an `https` URL; the sender sends
//! plain-HTTP requests that way too (see `send`), so every connection but
//! a plain-HTTP one through a proxy is made here.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::pace::{Pace, Paced};
use super::tunnel::ProxyEndpoint;

/// What the connector of one target does with a fresh TCP stream.
pub(super) struct Connector {
    /// The target, as the tunnel asks for it and TLS names it.
    pub host: String,
    pub port: u16,
    /// TLS with this configuration; `None` for plain HTTP.
    pub tls: Option<Arc<ClientConfig>>,
    /// A CONNECT tunnel through this proxy first.
    pub tunnel: Option<ProxyEndpoint>,
    pub pace: Pace,
    /// The CONNECT exchange may take this long (as connecting does).
    pub connect_pace: Pace,
    pub user_agent: String,
}

impl ureq::TlsConnector for Connector {
    fn connect(
        &self,
        _dns_name: &str,
        io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        let socket = match io.socket() {
            Some(s) => s.try_clone()?,
            None => return Err(io::Error::other("the connection has no socket").into()),
        };
        drop(io);
        let mut conn = Paced::new(socket, self.connect_pace);
        if let Some(proxy) = &self.tunnel {
            proxy.open(&mut conn, &self.host, self.port, &self.user_agent)?;
        }
        conn.set_pace(self.pace);
        let Some(config) = &self.tls else {
            return Ok(Box::new(conn));
        };
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut session = ClientConnection::new(config.clone(), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        session.complete_io(&mut conn)?;
        Ok(Box::new(Tls(StreamOwned::new(session, conn))))
    }
}

/// A TLS session over a paced socket.
struct Tls(StreamOwned<ClientConnection, Paced>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tls").field(&self.0.sock).finish()
    }
}

impl Read for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ureq::ReadWrite for Tls {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.0.sock.socket())
    }
}
