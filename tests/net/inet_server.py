#!/usr/bin/env python3
"""A server of the network tests' private internet (tests/net/internet.sh).

Runs inside the "internet" network namespace. One process per address:
  inet_server.py http ADDR LOG --cert C --key K   HTTP on ADDR:80 and HTTPS on ADDR:443;
      every request is answered 200 with a JSON echo {"server", "tls", "method", "path",
      "headers", "body_bytes"} (paths /quiet*: no headers, only "path", "server", "tls")
      and logged.
  inet_server.py udp ADDR LOG PORT...             logs every datagram on ADDR:PORT (UDP)
  inet_server.py tcp ADDR LOG PORT...             logs every TCP connection on ADDR:PORT
      (sends "RAW-TCP-REACHED\n" and closes)
Each log line is one JSON object {"kind", "server", "port", "peer", ...} written with one
append, so several processes may share a log. READY (a file named by --ready) is written
once every socket is bound.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log_line(path, rec):
    data = (json.dumps(rec, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        srv = self.server
        rec = {
            "kind": "https" if srv.tls else "http",
            "server": srv.addr,
            "port": srv.server_address[1],
            "peer": self.client_address[0],
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }
        log_line(srv.log, rec)
        out = dict(rec)
        out["tls"] = srv.tls
        if self.path.startswith("/quiet"):
            # No echo of the headers: the answer must not carry a secret into a sandbox.
            out = {"path": self.path, "server": srv.addr, "tls": srv.tls, "quiet": True}
        payload = (json.dumps(out, sort_keys=True) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Inet-Server", srv.addr)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any

    # CONNECT straight to an origin server is not a thing it serves: logged, refused.
    def do_CONNECT(self):
        self._any()


def make_http(addr, port, log, ctx):
    cls = type("S", (ThreadingHTTPServer,), {"address_family": family_of(addr),
                                             "daemon_threads": True,
                                             "allow_reuse_address": True})
    srv = cls((addr, port), Handler)
    srv.addr, srv.log, srv.tls = addr, log, ctx is not None
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv


def serve_udp(sock, addr, port, log):
    while True:
        data, peer = sock.recvfrom(65536)
        log_line(log, {"kind": "udp", "server": addr, "port": port, "peer": peer[0],
                       "bytes": len(data)})


def serve_tcp(sock, addr, port, log):
    while True:
        c, peer = sock.accept()
        log_line(log, {"kind": "tcp", "server": addr, "port": port, "peer": peer[0]})
        try:
            c.sendall(b"RAW-TCP-REACHED\n")
        except OSError:
            pass
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["http", "udp", "tcp"])
    ap.add_argument("addr")
    ap.add_argument("log")
    ap.add_argument("ports", nargs="*", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()
    threads = []
    if a.mode == "http":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        for port, c in ((80, None), (443, ctx)):
            srv = make_http(a.addr, port, a.log, c)
            threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
    else:
        for port in a.ports:
            if a.mode == "udp":
                s = socket.socket(family_of(a.addr), socket.SOCK_DGRAM)
                s.bind((a.addr, port))
                threads.append(threading.Thread(target=serve_udp, args=(s, a.addr, port, a.log),
                                                daemon=True))
            else:
                s = socket.socket(family_of(a.addr), socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a.addr, port))
                s.listen(64)
                threads.append(threading.Thread(target=serve_tcp, args=(s, a.addr, port, a.log),
                                                daemon=True))
    for t in threads:
        t.start()
    with open(a.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    for t in threads:
        t.join()


if __name__ == "__main__":
    sys.exit(main())
