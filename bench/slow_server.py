#!/usr/bin/env python3
"""An HTTP server on 127.0.0.1:PORT whose every answer (a 1 MB body,
Accept-Ranges: bytes) trickles at 1 byte/s (mode `trickle`) or stalls
after 10 bytes (mode `stall`). usage: slow_server.py PORT MODE"""
import socket, sys, threading, time

port, mode = int(sys.argv[1]), sys.argv[2]

def serve(c):
    try:
        while True:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nAccept-Ranges: bytes\r\n"
                      b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n")
            if mode == "trickle":
                while True:
                    c.sendall(b"{")
                    time.sleep(1)
            else:
                c.sendall(b"{" * 10)
                time.sleep(3600)
    except OSError:
        return

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
