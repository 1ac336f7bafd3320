//! An HTTP/1.1 server on 127.0.0.1 that gives scripted answers in turn,
//! for the layers' unit tests: faults a real server will not produce on
//! request (a stall, a bare HTTP/1.0 answer), and a log of what came.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// A keep-alive answer with a `Content-Length`.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// These bytes, then the connection is closed.
    Raw(&'static str),
    /// Reads the request and never answers.
    Stall,
}

impl Answer {
    pub fn status(status: u16, body: &str) -> Answer {
        Answer::Http {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Answer {
        Answer::status(status, "").header("Location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        if let Answer::Http { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

/// A request as it came: `METHOD path` and its headers (names in lower
/// case).
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Logged {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    answers: VecDeque<Answer>,
    log: Vec<Logged>,
    connections: usize,
}

pub(crate) struct Scripted {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Scripted {
    /// Serves `answers` in turn, one a request, then 500s.
    pub fn start(answers: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            answers: answers.into(),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                shared.lock().unwrap().connections += 1;
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        Scripted { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `METHOD path` of each request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.line).collect()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.trim_end().split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut parts = line.split_whitespace();
        let logged = Logged {
            line: format!(
                "{} {}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            ),
            headers,
        };
        let answer = {
            let mut st = state.lock().unwrap();
            st.log.push(logged);
            st.answers
                .pop_front()
                .unwrap_or_else(|| Answer::status(500, "no answer scripted"))
        };
        match answer {
            Answer::Http {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.write_all(body.as_bytes())?;
            }
            Answer::Raw(bytes) => {
                out.write_all(bytes.as_bytes())?;
                return Ok(());
            }
            Answer::Stall => {
                std::thread::sleep(Duration::from_secs(20));
                return Ok(());
            }
        }
    }
}
