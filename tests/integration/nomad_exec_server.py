#!/usr/bin/env python3
"""A scripted Nomad allocation exec endpoint for the exec stream's unit test
(tests/unit/test_nomad_exec.c): GET /v1/client/allocation/ID/exec?task=T&command=JSON&tty=B
upgraded to a WebSocket, frames as in Nomad's api/allocations_exec.go (JSON text messages,
base64 data; see src/backends/nomad/frames.h). Python 3 standard library only; the
WebSocket framing is tests/k8s/kws.py's.

Listens on 127.0.0.1 (prints "PORT n" once listening), exits when its stdin closes or after
--lifetime seconds. Writes to --log one JSON object per line: {"conn": N, "path": P,
"query": {...}} per request, {"conn": N, "frame": TEXT} per client text message,
{"conn": N, "binary": LEN}, {"conn": N, "close": CODE} for the client's close.

The command (argv, the query's JSON array; under the exec wrapper, its words after "--") is
the script:
  echo              stdin data back as stdout; at stdin's close: stdout and stderr close
                    frames, exit 0
  exit N [O [E]]    O on stdout, E on stderr, then exit code N (result {} for 0)
  signal N          exits with a result that holds only "signal": N
  close CODE REASON a close frame with CODE and REASON before any exit
  drop              the TCP connection dropped at once
  garbage           a text message that is not JSON, then waits
  binary            a binary message, then waits
  big N             N bytes of stdout in 32 KiB frames, then exit 0
  frames N          the client's first N text messages back on stdout (one per line), exit 0
  sleep             nothing; reads until the client goes
  wait [PID SIG]    (sends SIG to PID first) waits until a killer exec comes (below), then
                    exits 137 as a killed command would
  sh -c X agentcell-kill ID   the exec wrapper's killer: releases every "wait", exit 0
After an exit the connection is dropped without a close frame, as Nomad's agent does.
"""
import argparse
import base64
import json
import os
import socket
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
import kws  # noqa: E402

log_lock = threading.Lock()
log_path = None
killed = threading.Condition()
kills = 0


def log(obj):
    if not log_path:
        return
    with log_lock:
        with open(log_path, "a") as f:
            f.write(json.dumps(obj) + "\n")


def out(data, stream="stdout"):
    return {stream: {"data": base64.b64encode(data).decode()}}


class Conn:
    def __init__(self, sock, n):
        self.sock, self.n = sock, n
        self.parser = kws.FrameParser()
        self.pending = []
        self.closed = False

    def send_json(self, obj):
        self.sock.sendall(kws.encode_frame(kws.OP_TEXT, json.dumps(obj).encode()))

    def exit(self, code=None, result=None):
        if result is None:
            result = {} if not code else {"exit_code": code}
        self.send_json({"exited": True, "result": result})
        self.drop()

    def drop(self):
        """Ends the connection without a close frame. What the client sent meanwhile is
        read first: a socket closed with unread input sends a reset, which discards what
        is still on its way out (the exit frame)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(10)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed = True

    def next_text(self, timeout=None):
        """The client's next text message (None when it went away or on timeout)."""
        self.sock.settimeout(timeout)
        while not self.pending:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                return None
            if not data:
                return None
            try:
                msgs = self.parser.feed(data)
            except kws.ProtocolError as e:
                log({"conn": self.n, "protocol_error": str(e)})
                return None
            for op, payload in msgs:
                if op == kws.OP_TEXT:
                    text = payload.decode("utf-8", "replace")
                    log({"conn": self.n, "frame": text})
                    self.pending.append(text)
                elif op == kws.OP_BINARY:
                    log({"conn": self.n, "binary": len(payload)})
                elif op == kws.OP_PING:
                    self.sock.sendall(kws.encode_frame(kws.OP_PONG, payload))
                elif op == kws.OP_CLOSE:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    log({"conn": self.n, "close": code})
                    try:
                        self.sock.sendall(kws.encode_frame(kws.OP_CLOSE, payload[:2]))
                    except OSError:
                        pass
                    return None
        return self.pending.pop(0)


def handshake(sock, n):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > 65536:
            return None
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    url = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    log({"conn": n, "path": url.path, "query": query,
         "protocol": hdrs.get("sec-websocket-protocol")})

    def refuse(status, text):
        body = text.encode()
        sock.sendall(("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n" % (status, len(body))).encode() + body)
        return None

    parts = url.path.split("/")
    if method != "GET" or len(parts) != 6 or parts[1:4] != ["v1", "client", "allocation"] \
            or parts[5] != "exec":
        return refuse("404 Not Found", "Invalid URL")
    try:
        argv = json.loads(query.get("command", ""))
    except ValueError:
        return refuse("500 Internal Server Error", "failed to marshal command into json")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return refuse("500 Internal Server Error", "failed to marshal command into json")
    if hdrs.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in hdrs:
        return refuse("400 Bad Request", "not a websocket handshake")
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                  % kws.accept_key(hdrs["sec-websocket-key"])).encode())
    return argv


def serve(sock, n):
    global kills
    try:
        argv = handshake(sock, n)
        if argv is None:
            return
        c = Conn(sock, n)
        # The exec wrapper (src/backends/execwrap.h): the script is the command after "--".
        if argv[:2] == ["sh", "-c"] and len(argv) > 4 and argv[3] == "agentcell-exec" \
                and "--" in argv[4:]:
            argv = argv[argv.index("--", 4) + 1:]
        cmd = argv[0] if argv else ""
        if cmd == "echo":
            while True:
                t = c.next_text()
                if t is None:
                    return
                m = json.loads(t)
                st = m.get("stdin")
                if st is None:
                    continue
                if st.get("data"):
                    c.send_json(out(base64.b64decode(st["data"])))
                if st.get("close"):
                    c.send_json({"stdout": {"close": True}})
                    c.send_json({"stderr": {"close": True}})
                    c.exit(0)
                    return
        elif cmd == "exit":
            if len(argv) > 2:
                c.send_json(out(argv[2].encode()))
            if len(argv) > 3:
                c.send_json(out(argv[3].encode(), "stderr"))
            c.exit(int(argv[1]))
        elif cmd == "signal":
            c.exit(result={"signal": int(argv[1])})
        elif cmd == "close":
            reason = argv[2].encode()[:123]
            sock.sendall(kws.encode_frame(kws.OP_CLOSE, int(argv[1]).to_bytes(2, "big") + reason))
            while c.next_text(5) is not None:
                pass
        elif cmd == "drop":
            c.drop()
        elif cmd in ("garbage", "binary"):
            if cmd == "garbage":
                sock.sendall(kws.encode_frame(kws.OP_TEXT, b"not json"))
            else:
                sock.sendall(kws.encode_frame(kws.OP_BINARY, b"\x01x"))
            while c.next_text(10) is not None:
                pass
        elif cmd == "big":
            left = int(argv[1])
            while left > 0:
                k = min(left, 32768)
                c.send_json(out(b"x" * k))
                left -= k
            c.exit(0)
        elif cmd == "frames":
            got = []
            while len(got) < int(argv[1]):
                t = c.next_text(30)
                if t is None:
                    return
                got.append(t)
            c.send_json(out(("\n".join(got) + "\n").encode()))
            c.exit(0)
        elif cmd == "sleep":
            while c.next_text() is not None:
                pass
        elif cmd == "wait":
            with killed:
                seen = kills
            if len(argv) > 2:
                os.kill(int(argv[1]), int(argv[2]))
            with killed:
                killed.wait_for(lambda: kills > seen, timeout=60)
            c.exit(137)
        elif cmd == "sh" and len(argv) > 4 and argv[3] == "agentcell-kill":
            with killed:
                kills += 1
                killed.notify_all()
            c.exit(0)
        else:
            c.exit(127)
    except (OSError, ValueError, KeyError) as e:
        log({"conn": n, "error": str(e)})
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    global log_path
    ap = argparse.ArgumentParser()
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=300)
    args = ap.parse_args()
    log_path = args.log
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print("PORT %d" % ls.getsockname()[1], flush=True)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, n), daemon=True).start()


if __name__ == "__main__":
    main()
