#!/usr/bin/env python3
"""A small RFC 6455 server for the WebSocket client's tests (tests/unit/test_ws.c).

Python 3 standard library only. Listens on 127.0.0.1 (a free port: it prints "PORT n" on
stdout once listening), plain or TLS (--tls CERT KEY, optionally --client-ca CA to require
a client certificate), and writes what it saw to --log (one line per event) so the test can
check what the client sent.

Paths:
  /echo      handshake, then echo every data message (same opcode). Query:
             protocols=a,b  subprotocols it supports (default v5 then v4 channel.k8s.io);
                            it picks the client's first offered one it supports
             token=T        requires "Authorization: Bearer T" (401 metav1.Status if not)
             basic=U:P      requires basic auth U:P
             header=N:V     requires header N with value V
             burst=1        sends a text message "early" in the same write as the 101
  /refuse    answers status=N (default 403) with a metav1.Status JSON body;
             chunked=1 sends it chunked
  /badaccept 101 with a wrong Sec-WebSocket-Accept
  /badproto  101 naming a subprotocol nobody offered
Text messages starting with "cmd:" are commands:
  cmd:ping:P        ping with payload P, then "pong-ok:P" if the pong echoed it
  cmd:close:C:R     close with code C, reason R; logs the client's answering close
  cmd:frag:N:TEXT   TEXT in N fragments, a ping between the first two
  cmd:big:N         one binary message of N bytes (byte i is i % 251)
  cmd:raw:HEX       the bytes as they are (bad frames)
  cmd:drop          closes the TCP connection without a close frame
Client frames must be masked (else close 1002, logged "unmasked"). The server exits by
itself after --lifetime seconds (default 120).
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
log_lock = threading.Lock()
log_file = None


def log(line):
    if log_file is None:
        return
    with log_lock:
        with open(log_file, "a") as f:
            f.write(line + "\n")


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(sock):
    """Returns (fin, opcode, payload, masked)."""
    b0, b1 = recv_exact(sock, 2)
    fin, op = b0 & 0x80, b0 & 0x0F
    masked, ln = b1 & 0x80, b1 & 0x7F
    if ln == 126:
        ln = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif ln == 127:
        ln = struct.unpack("!Q", recv_exact(sock, 8))[0]
    key = recv_exact(sock, 4) if masked else None
    data = recv_exact(sock, ln) if ln else b""
    if key:
        data = bytes(c ^ key[i % 4] for i, c in enumerate(data)) if ln < 4096 else unmask(data, key)
    return bool(fin), op, data, bool(masked)


def unmask(data, key):
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


def frame(op, data=b"", fin=True):
    head = bytes([(0x80 if fin else 0) | op])
    n = len(data)
    if n < 126:
        head += bytes([n])
    elif n <= 0xFFFF:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + data


def read_message(sock):
    """Reassembles one data message; answers nothing. Returns (opcode, data) or a control
    frame as is."""
    op0, parts = None, []
    while True:
        fin, op, data, masked = read_frame(sock)
        if not masked:
            log("unmasked")
            sock.sendall(frame(8, struct.pack("!H", 1002) + b"unmasked"))
            raise EOFError
        if op >= 8:
            return op, data
        if op != 0:
            op0 = op
        parts.append(data)
        if fin:
            return op0, b"".join(parts)


def answer_close(sock, data):
    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
    log("client-close %d %s" % (code, data[2:].decode("utf-8", "replace")))
    try:
        sock.sendall(frame(8, data[:2]))
    except OSError:
        pass


def wait_close(sock):
    """After a close or a bad frame from us: the client's close frame, logged."""
    try:
        while True:
            op, data = read_message(sock)
            if op == 8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                log("client-close %d %s" % (code, data[2:].decode("utf-8", "replace")))
                return
    except (EOFError, OSError):
        log("client-eof")


def refuse(sock, status, message, chunked=False, reason="Refused"):
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": message,
                       "reason": reason, "code": status}).encode()
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (status, reason)
    if chunked:
        half = len(body) // 2
        payload = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + payload)
    else:
        sock.sendall(head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def handle(sock):
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(4096)
        if not chunk:
            return
        raw += chunk
        if len(raw) > 65536:
            return
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    method, target, version = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    url = urllib.parse.urlsplit(target)
    q = dict(urllib.parse.parse_qsl(url.query))
    log("request %s %s host=%s" % (method, target, headers.get("host", "")))
    if url.path == "/refuse":
        status = int(q.get("status", "403"))
        refuse(sock, status, 'pods "box" is forbidden: user "test" cannot create pods/exec',
               q.get("chunked") == "1", "Forbidden" if status == 403 else "NotFound")
        return
    key = headers.get("sec-websocket-key", "")
    if (method != "GET" or version != "HTTP/1.1"
            or headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-version") != "13"
            or len(base64.b64decode(key)) != 16):
        refuse(sock, 400, "not a WebSocket request", reason="BadRequest")
        return
    if "token" in q and headers.get("authorization") != "Bearer " + q["token"]:
        refuse(sock, 401, "Unauthorized", reason="Unauthorized")
        return
    if "basic" in q and headers.get("authorization") != "Basic " + base64.b64encode(q["basic"].encode()).decode():
        refuse(sock, 401, "Unauthorized", reason="Unauthorized")
        return
    if "header" in q:
        name, _, value = q["header"].partition(":")
        if headers.get(name.lower()) != value:
            refuse(sock, 403, "missing header " + name)
            return
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    supported = q.get("protocols", "v5.channel.k8s.io,v4.channel.k8s.io").split(",")
    chosen = next((p for p in offered if p in supported), None)
    log("offered %s chosen %s" % (",".join(offered), chosen))
    resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    if url.path == "/badaccept":
        accept = base64.b64encode(b"x" * 20).decode()
    resp += "Sec-WebSocket-Accept: %s\r\n" % accept
    if url.path == "/badproto":
        resp += "Sec-WebSocket-Protocol: v9.unknown\r\n"
    elif chosen:
        resp += "Sec-WebSocket-Protocol: %s\r\n" % chosen
    out = (resp + "\r\n").encode()
    if q.get("burst") == "1":
        out += frame(1, b"early")
    sock.sendall(out)
    if url.path != "/echo":
        wait_close(sock)
        return
    while True:
        op, data = read_message(sock)
        if op == 8:
            answer_close(sock, data)
            return
        if op in (9, 10):
            if op == 9:
                sock.sendall(frame(10, data))
            continue
        if op == 1 and data.startswith(b"cmd:"):
            cmd, _, arg = data[4:].partition(b":")
            if cmd == b"ping":
                sock.sendall(frame(9, arg))
                while True:
                    op2, got = read_message(sock)
                    if op2 == 10:
                        break
                sock.sendall(frame(1, (b"pong-ok:" if got == arg else b"pong-bad:") + got))
            elif cmd == b"close":
                code, _, reason = arg.partition(b":")
                sock.sendall(frame(8, struct.pack("!H", int(code)) + reason))
                wait_close(sock)
                return
            elif cmd == b"frag":
                n, _, text = arg.partition(b":")
                n = int(n)
                step = max(1, (len(text) + n - 1) // n)
                pieces = [text[i:i + step] for i in range(0, len(text), step)] or [b""]
                for i, piece in enumerate(pieces):
                    sock.sendall(frame(1 if i == 0 else 0, piece, fin=(i == len(pieces) - 1)))
                    if i == 0:
                        sock.sendall(frame(9, b"between"))
            elif cmd == b"big":
                n = int(arg)
                pattern = bytes(i % 251 for i in range(251))
                data = (pattern * (n // 251 + 1))[:n]
                sock.sendall(frame(2, data))
            elif cmd == b"raw":
                sock.sendall(bytes.fromhex(arg.decode()))
                wait_close(sock)
                return
            elif cmd == b"drop":
                return
            continue
        sock.sendall(frame(op, data))


def serve_one(conn, ctx):
    try:
        if ctx is not None:
            conn = ctx.wrap_socket(conn, server_side=True)
            log("alpn %s" % conn.selected_alpn_protocol())
        handle(conn)
    except (EOFError, OSError, ValueError, ssl.SSLError) as e:
        log("connection-error %s" % type(e).__name__)
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    global log_file
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--client-ca")
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    log_file = args.log
    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        ctx.set_alpn_protocols(["h2", "http/1.1"])

        def sni(sslsock, name, context):
            log("sni %s" % name)
        ctx.sni_callback = sni
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.5)
    print("PORT %d" % srv.getsockname()[1], flush=True)
    end = time.monotonic() + args.lifetime
    parent = os.getppid()
    # Gone with the test that started it, or after --lifetime at the latest.
    while time.monotonic() < end and os.getppid() == parent:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        conn.settimeout(30)
        threading.Thread(target=serve_one, args=(conn, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
