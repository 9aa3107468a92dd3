#!/usr/bin/env python3
"""A small token server for Docker's registry token authentication (the image tests).

The registry (docker-registry, auth.token) answers an unauthenticated request with
  401  WWW-Authenticate: Bearer realm="<this server>/token",service="...",scope="repository:R:pull"
and the client asks this server for a token:
  GET  /token?service=S&scope=repository:R:pull[,push]&scope=...   (Authorization: Basic)
  POST /token  grant_type=password&username=..&password=..&service=..&scope=..  (OAuth2 form)
It answers {"token", "access_token", "expires_in", "issued_at"}: an RS256 JWT whose header
carries the signing certificate (x5c), claims iss/sub/aud/exp/nbf/iat/jti and
access=[{type: repository, name, actions}]. The registry verifies it against its
auth.token.rootcertbundle (= the signing certificate), issuer and service.

The signature is made by `openssl dgst -sha256 -sign KEY` (PKCS#1 v1.5): no pip packages.

  token_server.py --key signer.key --cert signer.pem --issuer I --service S \
      --user alice:secret [--user ...] [--anonymous 'public/*'] \
      [--tls-cert srv.pem --tls-key srv.key] [--port 0 --port-file F] [--log F]

Wrong credentials: 401. No credentials: 401 unless the repository matches --anonymous (then
pull only). Each request is logged as one line: "GET /token user=alice scope=... -> 200".
"""

import argparse
import base64
import fnmatch
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    def __init__(self, key, cert):
        self.key = key
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = [base64.b64encode(der).decode()]

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        return signing_input + "." + b64url(sig)


def parse_scopes(values):
    """["repository:a/b:pull,push", ...] -> [(type, name, [actions])]"""
    out = []
    for v in values:
        for one in v.split(" "):
            parts = one.split(":")
            if len(parts) < 3:
                continue
            # The name may hold a registry port (host:5000/x): type is first, actions last.
            out.append((parts[0], ":".join(parts[1:-1]), [a for a in parts[-1].split(",") if a]))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentcell-test-token/1"

    def log_message(self, fmt, *args):  # the per-request line is written by log()
        pass

    def log(self, user, scopes, status):
        line = "%s %s user=%s scope=%s -> %d\n" % (
            self.command, self.path.split("?")[0], user or "-",
            " ".join("%s:%s:%s" % (t, n, ",".join(a)) for t, n, a in scopes) or "-", status)
        self.server.logf.write(line)
        self.server.logf.flush()

    def reply(self, status, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def basic_user(self):
        """(user, password) from Authorization: Basic, or (None, None)."""
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None, None
        try:
            raw = base64.b64decode(h[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        user, _, password = raw.partition(":")
        return user, password

    def issue(self, user, password, service, scopes):
        srv = self.server
        if user is not None and srv.users.get(user) != password:
            self.log(user, scopes, 401)
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "incorrect username or password"}]},
                              {"WWW-Authenticate": 'Basic realm="agentcell-test-token"'})
        if service and service != srv.service:
            self.log(user, scopes, 400)
            return self.reply(400, {"errors": [{"code": "DENIED",
                                                "message": "unknown service %r" % service}]})
        access = []
        for typ, name, actions in scopes:
            if typ != "repository":
                continue
            if user is None:
                if any(fnmatch.fnmatch(name, p) for p in srv.anonymous):
                    granted = [a for a in actions if a == "pull"]
                else:
                    granted = []
            else:
                granted = [a for a in actions if a in ("pull", "push", "delete", "*")]
            access.append({"type": "repository", "name": name, "actions": granted})
        if user is None and not srv.anonymous:
            self.log(user, scopes, 401)
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "authentication required"}]},
                              {"WWW-Authenticate": 'Basic realm="agentcell-test-token"'})
        now = int(time.time())
        claims = {"iss": srv.issuer, "sub": user or "", "aud": srv.service,
                  "exp": now + srv.ttl, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(16).hex(), "access": access}
        tok = srv.signer.sign(claims)
        self.log(user, scopes, 200)
        srv.issued += 1
        return self.reply(200, {"token": tok, "access_token": tok, "expires_in": srv.ttl,
                                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime(now))})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": u.path}]})
        q = urllib.parse.parse_qs(u.query)
        user, password = self.basic_user()
        self.issue(user, password, (q.get("service") or [""])[0], parse_scopes(q.get("scope", [])))

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode(errors="replace") if n else ""
        if u.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": u.path}]})
        f = urllib.parse.parse_qs(body)
        grant = (f.get("grant_type") or [""])[0]
        if grant != "password":
            self.log(None, [], 400)
            return self.reply(400, {"error": "unsupported_grant_type"})
        user = (f.get("username") or [""])[0]
        password = (f.get("password") or [""])[0]
        self.issue(user, password, (f.get("service") or [""])[0],
                   parse_scopes(f.get("scope", [])))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--key", required=True, help="the token signing key (PEM)")
    ap.add_argument("--cert", required=True, help="its certificate: the x5c header")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", action="append", default=[], help="USER:PASSWORD (repeatable)")
    ap.add_argument("--anonymous", action="append", default=[],
                    help="repository glob anonymous clients may pull (repeatable)")
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="written with the port once listening")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log", help="request log (default: stderr)")
    a = ap.parse_args()

    srv = Server((a.host, a.port), Handler)
    srv.signer = Signer(a.key, a.cert)
    srv.issuer, srv.service, srv.ttl = a.issuer, a.service, a.ttl
    srv.users = dict(u.split(":", 1) for u in a.user)
    srv.anonymous = a.anonymous
    srv.issued = 0
    srv.logf = open(a.log, "a") if a.log else sys.stderr
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
