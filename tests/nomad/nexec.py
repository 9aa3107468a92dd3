"""The exec WebSocket of the test Nomad agent (/v1/client/allocation/ID/exec).

JSON text messages as api/allocations_exec.go and plugins/drivers/execstreaming.go:
input {"stdin": {"data": b64}}, {"stdin": {"close": true}}, {"tty_size": {"height", "width"}}
(anything else is a heartbeat); output {"stdout"|"stderr": {"data": b64}} in reads of at
most 1024 bytes, {"stdout"|"stderr": {"close": true}} at each stream's end, then
{"exited": true, "result": {"exit_code": N}} (exit_code omitted when 0, as the codec's
omitempty does). The command runs with `agentcell exec -i [-t]` in the task's sandbox, on a
pty for tty (resize: TIOCSWINSZ; end of input: ^D). The framing is tests/k8s/kws.py's.
"""

import base64
import fcntl
import json
import os
import pty
import queue
import select
import signal
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time
import tty as tty_mod

import kws
from njobs import ApiError


class Stop(Exception):
    pass


class WsConn:
    """The server side of the exec WebSocket: JSON text messages."""

    def __init__(self, sock):
        self.sock = sock
        self.parser = kws.FrameParser()
        self.wlock = threading.Lock()
        self.pending = []
        self.closed = False

    def send_json(self, obj):
        frame = kws.encode_frame(kws.OP_TEXT, json.dumps(obj, separators=(",", ":")).encode())
        with self.wlock:
            if not self.closed:
                self.sock.sendall(frame)

    def control(self, op, payload=b""):
        with self.wlock:
            if not self.closed:
                self.sock.sendall(kws.encode_frame(op, payload))

    def close_with(self, code, text):
        """gorilla's WriteMessage(CloseMessage, FormatCloseMessage(code, text)); a payload
        over 125 bytes is refused by gorilla (nothing is sent)."""
        payload = struct.pack("!H", code) + text.encode()
        if len(payload) <= 125:
            try:
                self.control(kws.OP_CLOSE, payload)
            except OSError:
                pass

    def shutdown(self):
        """Nomad closes the connection without a close frame once the command exited."""
        with self.wlock:
            self.closed = True
        try:
            self.sock.settimeout(0.5)
            try:
                self.sock.shutdown(socket.SHUT_WR)
                while self.sock.recv(4096):
                    pass
            except (OSError, ssl.SSLError):
                pass
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ssl.SSLError):
            pass

    def readable(self, timeout):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def read_messages(self):
        """-> list of decoded JSON messages (raw bytes for undecodable ones); None at close/EOF."""
        data = self.sock.recv(65536)
        if not data:
            return None
        out = []
        for op, payload in self.parser.feed(data):
            if op == kws.OP_PING:
                self.control(kws.OP_PONG, payload)
            elif op == kws.OP_CLOSE:
                return out + [None]
            elif op in (kws.OP_TEXT, kws.OP_BINARY):
                try:
                    out.append(json.loads(payload))
                except ValueError:
                    out.append(("bad", payload))
        return out

    def read_json(self, timeout):
        end = time.monotonic() + timeout
        while True:
            if self.pending:
                return self.pending.pop(0)
            left = end - time.monotonic()
            if left <= 0 or not self.readable(left):
                raise ApiError(400, "i/o timeout")
            msgs = self.read_messages()
            if msgs is None:
                raise ApiError(400, "EOF")
            self.pending += msgs


def _set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def run_exec(agent, ws, runner, t, command, tty):
    """The command in the task's sandbox; frames as plugins/drivers/execstreaming.go.
    -> exit code (None if the client went away)."""
    argv = runner.exec_argv(t, command, interactive=True, tty=tty)
    early = list(ws.pending)
    ws.pending = []
    if tty:
        master, slave = pty.openpty()
        # Raw from the start: agentcell exec makes its terminal raw itself, but an input
        # byte that arrives before would meet a cooked line discipline (a ^D there becomes
        # an EOF marker, read back as NUL once raw).
        tty_mod.setraw(slave)
        _set_winsize(master, 24, 80)
        # Clients send the terminal's size first: start the command with it.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and not any(isinstance(m, dict) and m.get("tty_size") for m in early):
            if ws.readable(max(0.0, deadline - time.monotonic())):
                msgs = ws.read_messages()
                if msgs is None:
                    break
                early += msgs
        for m in early:
            if isinstance(m, dict) and isinstance(m.get("tty_size"), dict):
                _apply_size(master, m["tty_size"])

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        proc = subprocess.Popen(argv, env=agent.client.env, stdin=slave, stdout=slave, stderr=slave,
                                preexec_fn=ctty, close_fds=True)
        os.close(slave)
        outs = {master: "stdout"}
        stdin_w = master
    else:
        proc = subprocess.Popen(argv, env=agent.client.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        outs = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        stdin_w = proc.stdin.fileno()
    inq = queue.Queue()

    def writer():
        while True:
            b = inq.get()
            if b is None:
                break
            try:
                if b:
                    os.write(stdin_w, b)
            except OSError:
                break
        if not tty:
            try:
                proc.stdin.close()
            except OSError:
                pass
    threading.Thread(target=writer, daemon=True).start()
    gone = False
    bad = None

    def handle(m):
        nonlocal bad
        if m is None:
            return False
        if isinstance(m, tuple):
            bad = "invalid character in exec input"
            return False
        if not isinstance(m, dict):
            bad = "json: cannot unmarshal %s into Go value of type drivers.ExecTaskStreamingRequestMsg" % type(m).__name__
            return False
        sd = m.get("stdin")
        if isinstance(sd, dict):
            if sd.get("close"):
                inq.put(b"\x04" if tty else None)
            elif sd.get("data"):
                try:
                    inq.put(base64.b64decode(sd["data"]))
                except (ValueError, TypeError):
                    bad = "illegal base64 data in stdin"
                    return False
        elif isinstance(m.get("tty_size"), dict) and tty:
            _apply_size(master, m["tty_size"])
        return True
    for m in early:
        handle(m)
    try:
        while outs:
            sock_open = not gone and bad is None
            pending = sock_open and isinstance(ws.sock, ssl.SSLSocket) and ws.sock.pending()
            rl, _, _ = select.select(list(outs) + ([ws.sock] if sock_open else []), [], [], 0 if pending else 1.0)
            if sock_open and (ws.sock in rl or ws.readable(0)):
                msgs = ws.read_messages()
                if msgs is None:
                    gone = True
                else:
                    for m in msgs:
                        if not handle(m):
                            if m is None:
                                gone = True
                            break
                if gone or bad:
                    break
            for fd in [x for x in rl if x in outs]:
                try:
                    b = os.read(fd, 1024)
                except OSError:
                    b = b""
                name = outs[fd]
                if not b:
                    del outs[fd]
                    ws.send_json({name: {"close": True}})
                    if tty:
                        ws.send_json({"stderr": {"close": True}})
                    continue
                ws.send_json({name: {"data": base64.b64encode(b).decode()}})
        if gone or bad:
            raise Stop()
        rc = proc.wait()
    except (Stop, OSError, ssl.SSLError, kws.ProtocolError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        if bad:
            ws.close_with(1011, bad)
        return None
    finally:
        inq.put(None)
        if tty:
            os.close(master)
    code = rc if rc >= 0 else 128 - rc
    ws.send_json({"exited": True, "result": {"exit_code": code} if code else {}})
    return code


def _apply_size(fd, sz):
    try:
        _set_winsize(fd, int(sz.get("height") or 24), int(sz.get("width") or 80))
    except (ValueError, TypeError, OSError):
        pass
