#!/usr/bin/env python3
"""HTTPS test server for the remote client's tests (tests/unit/test_remote_http.c).

Listens on 127.0.0.1 only, prints "PORT <n>" once ready, and exits when its standard input
closes (the test holds it open) or after --lifetime seconds. Client certificates are
requested (optional) and checked against --client-ca. Every answer is JSON describing the
request, except on these paths:
  /status/<code>       that status with a metav1.Status body
  /retry-after/<secs>  429 with "Retry-After: <secs>"; /retry-date: 429 with an HTTP-date
  /need-cert           401 unless a client certificate was presented
  /redirect            302 to /echo
  /big/<mib>           <mib> MiB of JSON-ish bytes
  /sleep/<ms>          answers after <ms> milliseconds
"""
import argparse
import email.utils
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _peer_cn(self):
        cert = self.connection.getpeercert()
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def _send(self, code, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        parts = self.path.split("?")[0].strip("/").split("/")
        head = parts[0]
        if head == "status" and len(parts) > 1:
            code = int(parts[1])
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'pods "x" is forbidden: User "u" cannot create resource "pods"',
                      "reason": "Forbidden", "code": code}
            return self._send(code, status)
        if head == "retry-after":
            return self._send(429, {"kind": "Status", "code": 429, "reason": "TooManyRequests",
                                    "message": "slow down"},
                              headers=[("Retry-After", parts[1])])
        if head == "retry-date":
            when = email.utils.formatdate(time.time() + 120, usegmt=True)
            return self._send(429, {"kind": "Status", "code": 429}, headers=[("Retry-After", when)])
        if head == "need-cert" and self._peer_cn() is None:
            return self._send(401, {"kind": "Status", "code": 401, "reason": "Unauthorized",
                                    "message": "Unauthorized"})
        if head == "redirect":
            return self._send(302, b"", "text/plain", headers=[("Location", "/echo")])
        if head == "big":
            n = int(parts[1]) * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while n > 0:
                    self.wfile.write(chunk[:min(n, len(chunk))])
                    n -= len(chunk)
            except OSError:
                pass
            return None
        if head == "sleep":
            time.sleep(int(parts[1]) / 1000)
        self._send(200, {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "authorization": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
            "x_test": self.headers.get("X-Test"),
            "client_cn": self._peer_cn(),
            "sni": getattr(self.connection, "sni_name", None),
            "peer_port": self.client_address[1],
            "body": body,
        })

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--lifetime", type=float, default=300)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL

    def on_sni(sock, name, _ctx):
        sock.sni_name = name
    ctx.sni_callback = on_sni

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)

    def watchdog():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        os._exit(0)
    threading.Thread(target=watchdog, daemon=True).start()
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()

    print("PORT", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
