#!/usr/bin/python3
"""Raw-protocol client of the test Nomad agent, for tests (a WebSocket client half of its own).

    nprobe.py exec ALLOC TASK [--command JSON | -- ARGV...] [--tty] [--stdin TEXT] [--no-close]
                   [--resize ROWSxCOLS] [--ws-handshake] [--no-upgrade] [--wait-before-close S]
    nprobe.py frames < body         decode a framed log/stream body (concatenated StreamFrames)

Connection as the Nomad CLI: NOMAD_ADDR, NOMAD_TOKEN, NOMAD_CACERT, NOMAD_CLIENT_CERT,
NOMAD_CLIENT_KEY, NOMAD_TLS_SERVER_NAME. exec prints one JSON object: the HTTP status of the
upgrade (and the body when it is not 101), stdout, stderr, exit_code (null without an
"exited" frame), the close frame's code and reason (null if none), every frame received,
and whether the server closed the connection after the exit frame.
"""

import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse


def connect():
    addr = os.environ.get("NOMAD_ADDR", "http://127.0.0.1:4646")
    u = urllib.parse.urlsplit(addr)
    port = u.port or (443 if u.scheme == "https" else 80)
    s = socket.create_connection((u.hostname, port), timeout=30)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=os.environ.get("NOMAD_CACERT") or None)
        if os.environ.get("NOMAD_CLIENT_CERT"):
            ctx.load_cert_chain(os.environ["NOMAD_CLIENT_CERT"], os.environ.get("NOMAD_CLIENT_KEY"))
        s = ctx.wrap_socket(s, server_hostname=os.environ.get("NOMAD_TLS_SERVER_NAME") or u.hostname)
    return s, u.netloc


def mask_frame(op, payload):
    b0 = 0x80 | op
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class Reader:
    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = bytearray(buf)

    def need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError()
            self.buf += d
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def frame(self):
        b0, b1 = self.need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.need(8))[0]
        if b1 & 0x80:
            raise ValueError("masked server frame")
        return b0 & 0x0F, self.need(n)


def do_exec(a):
    s, host = connect()
    command = a.command if a.command is not None else json.dumps(a.argv)
    q = {"task": a.task, "command": command}
    if a.tty:
        q["tty"] = "true"
    if a.tty_raw is not None:
        q["tty"] = a.tty_raw
    if a.ws_handshake:
        q["ws_handshake"] = "true"
    path = "/v1/client/allocation/%s/exec?%s" % (a.alloc, urllib.parse.urlencode(q))
    key = base64.b64encode(os.urandom(16)).decode()
    hdrs = ["GET %s HTTP/1.1" % path, "Host: " + host]
    if not a.no_upgrade:
        hdrs += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
    tok = os.environ.get("NOMAD_TOKEN")
    if tok and not a.ws_handshake:
        hdrs.append("X-Nomad-Token: " + tok)
    s.sendall(("\r\n".join(hdrs) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    out = {"status": status, "body": None, "stdout": "", "stderr": "", "exit_code": None, "close": None,
           "frames": [], "eof_after_exit": None}
    if status != 101:
        hl = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:] if ":" in ln}
        n = int(hl.get("content-length", "0"))
        body = rest
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        out["body"] = body.decode(errors="replace")
        print(json.dumps(out))
        return 0

    def send(obj):
        s.sendall(mask_frame(1, json.dumps(obj).encode()))
    if a.ws_handshake:
        send({"version": 1, "auth_token": tok or ""})
    if a.resize:
        rows, cols = a.resize.split("x")
        send({"tty_size": {"height": int(rows), "width": int(cols)}})
    if a.stdin is not None:
        data = a.stdin.encode()
        for i in range(0, len(data), 2048):
            send({"stdin": {"data": base64.b64encode(data[i:i + 2048]).decode()}})
    if a.heartbeat:
        send({})
    if not a.no_close:
        if a.wait_before_close:
            time.sleep(a.wait_before_close)
        send({"stdin": {"close": True}})
    r = Reader(s, rest)
    s.settimeout(a.timeout)
    stdout, stderr = bytearray(), bytearray()
    try:
        while True:
            op, payload = r.frame()
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                out["close"] = {"code": code, "reason": payload[2:].decode(errors="replace")}
                break
            if op == 9:
                s.sendall(mask_frame(10, payload))
                continue
            if op != 1:
                continue
            f = json.loads(payload)
            out["frames"].append(f)
            if "stdout" in f and f["stdout"].get("data"):
                stdout += base64.b64decode(f["stdout"]["data"])
            if "stderr" in f and f["stderr"].get("data"):
                stderr += base64.b64decode(f["stderr"]["data"])
            if f.get("exited"):
                out["exit_code"] = (f.get("result") or {}).get("exit_code", 0)
                try:
                    op2, p2 = r.frame()
                    out["eof_after_exit"] = False
                    out["after_exit"] = [op2, p2.decode(errors="replace")]
                except (EOFError, OSError):
                    out["eof_after_exit"] = True
                break
    except (EOFError, OSError) as e:
        out["error"] = repr(e)
    out["stdout"] = stdout.decode(errors="replace")
    out["stderr"] = stderr.decode(errors="replace")
    print(json.dumps(out))
    return 0


def frames():
    data = sys.stdin.buffer.read().decode()
    dec = json.JSONDecoder()
    i = 0
    out = {"frames": [], "data": "", "heartbeats": 0, "files": [], "events": [], "offsets": []}
    while i < len(data):
        while i < len(data) and data[i].isspace():
            i += 1
        if i >= len(data):
            break
        obj, i = dec.raw_decode(data, i)
        out["frames"].append(obj)
        if not obj:
            out["heartbeats"] += 1
        if obj.get("Data"):
            out["data"] += base64.b64decode(obj["Data"]).decode(errors="replace")
        if obj.get("File") and obj["File"] not in out["files"]:
            out["files"].append(obj["File"])
        if obj.get("FileEvent"):
            out["events"].append(obj["FileEvent"])
        if "Offset" in obj:
            out["offsets"].append(obj["Offset"])
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("exec")
    e.add_argument("alloc")
    e.add_argument("task")
    e.add_argument("--command", help="the raw command query parameter (default: ARGV as JSON)")
    e.add_argument("--tty", action="store_true")
    e.add_argument("--tty-raw", help="the raw tty query parameter")
    e.add_argument("--stdin")
    e.add_argument("--no-close", action="store_true", help="do not send stdin close")
    e.add_argument("--resize")
    e.add_argument("--heartbeat", action="store_true", help="send a {} heartbeat")
    e.add_argument("--ws-handshake", action="store_true", help="token in a first message (ws_handshake=true)")
    e.add_argument("--no-upgrade", action="store_true", help="a plain GET, no WebSocket headers")
    e.add_argument("--wait-before-close", type=float, default=0)
    e.add_argument("--timeout", type=float, default=60)
    e.add_argument("argv", nargs="*")
    sub.add_parser("frames")
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    a = ap.parse_args(argv)
    if a.cmd == "exec":
        a.argv = list(a.argv) + rest
        return do_exec(a)
    return frames()


if __name__ == "__main__":
    sys.exit(main())
