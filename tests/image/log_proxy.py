#!/usr/bin/env python3
"""A logging, optionally throttled HTTP reverse proxy in front of a test registry.

  log_proxy.py --upstream http://127.0.0.1:5000 [--cacert CA] [--rate BYTES_PER_S]
               [--port 0 --port-file F] [--log F]

Every request is forwarded as is (method, path, headers but the hop-by-hop ones, body) and
logged as one line when its response starts:
  GET /v2/x/blobs/sha256:.. range=bytes=1048576- -> 206 len=66060288
(range=- when the request had no Range header). Response bodies are streamed in 64 KiB
pieces, at most --rate bytes per second per connection (0: no limit), so that a test can
interrupt a download half-way reliably. A client that goes away ends its relay quietly.
"""

import argparse
import http.client
import http.server
import os
import socketserver
import ssl
import sys
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailers", "transfer-encoding", "upgrade", "host"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def upstream(self):
        s = self.server
        if s.up.scheme == "https":
            return http.client.HTTPSConnection(s.up.hostname, s.up.port, timeout=60,
                                               context=s.ctx)
        return http.client.HTTPConnection(s.up.hostname, s.up.port, timeout=60)

    def relay(self):
        s = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = s.up.netloc
        conn = self.upstream()
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
        except OSError as e:
            self.send_error(502, "upstream: %s" % e)
            return
        length = resp.getheader("Content-Length")
        data = None
        if length is None and self.command != "HEAD":
            data = resp.read()
            length = str(len(data))
        with s.lock:
            s.logf.write("%s %s range=%s -> %d len=%s\n" % (
                self.command, self.path, self.headers.get("Range", "-"), resp.status,
                length if length is not None else "-"))
            s.logf.flush()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            if k.lower() == "location" and v.startswith(s.upstream_url):
                v = v[len(s.upstream_url):]  # keep the client on the proxy
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command == "HEAD":
            conn.close()
            return
        try:
            if data is not None:
                self.wfile.write(data)
                return
            left = int(length)
            t0, sent = time.monotonic(), 0
            while left > 0:
                chunk = resp.read(min(65536, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
                sent += len(chunk)
                if s.rate > 0:
                    ahead = sent / s.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = relay


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    import threading

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="http(s)://host:port of the registry")
    ap.add_argument("--cacert", help="CA of an https upstream")
    ap.add_argument("--rate", type=int, default=0, help="bytes per second per response")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.up = urllib.parse.urlsplit(a.upstream)
    srv.upstream_url = a.upstream.rstrip("/")
    srv.ctx = ssl.create_default_context(cafile=a.cacert) if a.cacert else None
    srv.rate = a.rate
    srv.lock = threading.Lock()
    srv.logf = open(a.log, "a") if a.log else sys.stderr
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
