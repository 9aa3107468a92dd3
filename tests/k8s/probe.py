#!/usr/bin/python3
"""Raw-protocol probes of the fake API server, for what kubectl does not show.

    probe.py KUBECONFIG CONTEXT raw METHOD PATH [BODY]   -> {"status", "headers", "body"}
    probe.py KUBECONFIG CONTEXT exec PROTOS NS POD [--stdin DATA] -- CMD...
        -> {"http", "protocol", "stdout", "stderr", "status"} (PROTOS comma-separated)
    probe.py KUBECONFIG CONTEXT watch PATH SECONDS       -> [event types with object names]

Reads the server, CA and credentials from the (JSON) kubeconfig the server wrote. Each
prints one JSON document. Standard library only; the client half of the WebSocket codec
(masking) is written here, separately from the server's.
"""

import base64
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import tempfile
import time
import urllib.parse


def load(kubeconfig, context):
    with open(kubeconfig) as f:
        cfg = json.load(f)
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == context)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    u = urllib.parse.urlsplit(cluster["server"])
    sslctx = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        sslctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    else:
        sslctx.load_verify_locations(cluster["certificate-authority"])
    if "client-certificate-data" in user:
        d = tempfile.mkdtemp()
        for k, n in (("client-certificate-data", "c.crt"), ("client-key-data", "c.key")):
            with open(os.path.join(d, n), "wb") as f:
                f.write(base64.b64decode(user[k]))
        sslctx.load_cert_chain(os.path.join(d, "c.crt"), os.path.join(d, "c.key"))
    sslctx.set_alpn_protocols(["http/1.1"])
    headers = {"Authorization": "Bearer " + user["token"]} if user.get("token") else {}
    return u.hostname, u.port, sslctx, headers


def raw(conn_info, method, path, body=None, extra=None):
    host, port, sslctx, headers = conn_info
    c = http.client.HTTPSConnection(host, port, context=sslctx, timeout=30)
    h = dict(headers, **(extra or {}))
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = data
    return {"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()}, "body": parsed}


def _frame(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_frames(sock, buf):
    """-> (frames list [(op, payload)], rest) from buf; server frames are not masked."""
    out = []
    while len(buf) >= 2:
        op, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
        if len(buf) < pos + n:
            break
        out.append((op, buf[pos:pos + n]))
        buf = buf[pos + n:]
    return out, buf


def ws_exec(conn_info, protos, ns, pod, cmd, stdin_data=None):
    host, port, sslctx, headers = conn_info
    q = [("command", c) for c in cmd] + [("stdout", "true"), ("stderr", "true")]
    if stdin_data is not None:
        q.append(("stdin", "true"))
    path = "/api/v1/namespaces/%s/pods/%s/exec?%s" % (ns, pod, urllib.parse.urlencode(q))
    s = sslctx.wrap_socket(socket.create_connection((host, port), timeout=30), server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket", "Connection: Upgrade",
           "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: " + protos]
    req += ["%s: %s" % kv for kv in headers.items()]
    s.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    code = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:] if ":" in ln}
    res = {"http": code, "protocol": hdrs.get("sec-websocket-protocol"), "stdout": "", "stderr": "",
           "status": None, "close": None}
    if code != 101:
        return res
    if stdin_data is not None:
        s.sendall(_frame(2, b"\x00" + stdin_data.encode()))
        if res["protocol"] == "v5.channel.k8s.io":
            s.sendall(_frame(2, b"\xff\x00"))
    s.sendall(_frame(9, b"hb"))  # a ping: the server must answer with a pong
    deadline = time.time() + 30
    pong = False
    while time.time() < deadline:
        frames, buf = _read_frames(s, buf)
        for op, p in frames:
            if op == 2 and p:
                ch, data = p[0], p[1:]
                if ch == 1:
                    res["stdout"] += data.decode(errors="replace")
                elif ch == 2:
                    res["stderr"] += data.decode(errors="replace")
                elif ch == 3:
                    res["status"] = json.loads(data)
            elif op == 10:
                pong = True
            elif op == 8:
                res["close"] = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                res["pong"] = pong
                s.sendall(_frame(8, p[:2]))
                return res
        d = s.recv(65536)
        if not d:
            break
        buf += d
    res["pong"] = pong
    return res


def watch(conn_info, path, seconds):
    host, port, sslctx, headers = conn_info
    c = http.client.HTTPSConnection(host, port, context=sslctx, timeout=seconds + 10)
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    events = []
    end = time.time() + seconds
    while time.time() < end:
        line = r.readline()
        if not line:
            break
        e = json.loads(line)
        o = e["object"]
        events.append({"type": e["type"], "name": o.get("metadata", {}).get("name"),
                       "rv": o.get("metadata", {}).get("resourceVersion"),
                       "phase": (o.get("status") or {}).get("phase"), "kind": o.get("kind")})
    return {"status": r.status, "contentType": r.getheader("Content-Type"), "events": events}


def main():
    kc, context, op = sys.argv[1:4]
    info = load(kc, context)
    a = sys.argv[4:]
    if op == "raw":
        out = raw(info, a[0], a[1], a[2] if len(a) > 2 else None)
    elif op == "exec":
        protos, ns, pod = a[0], a[1], a[2]
        rest = a[3:]
        stdin = None
        if rest and rest[0] == "--stdin":
            stdin, rest = rest[1], rest[2:]
        assert rest[0] == "--"
        out = ws_exec(info, protos, ns, pod, rest[1:], stdin)
    elif op == "watch":
        out = watch(info, a[0], float(a[1]))
    else:
        raise SystemExit("unknown probe " + op)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
