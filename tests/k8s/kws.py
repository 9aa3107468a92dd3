"""Server half of RFC 6455 (WebSocket) for the fake API server's pods/exec and pods/attach.

Only what the Kubernetes channel protocols need: binary messages, fragmentation on input,
ping/pong, close with a status code, a size cap. Client frames must be masked (RFC 6455
5.1: a server closes the connection with 1002 on an unmasked frame).
"""

import base64
import hashlib
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 << 20

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class ProtocolError(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def encode_frame(opcode, payload, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


class FrameParser:
    """Incremental parser: feed(bytes) -> list of (opcode, payload) complete messages
    (control frames are returned as they come; data fragments are joined)."""

    def __init__(self, max_message=MAX_MESSAGE):
        self.buf = bytearray()
        self.frag_op = None
        self.frag = bytearray()
        self.max = max_message

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            m = self._one()
            if m is None:
                return out
            out.append(m)

    def _one(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin, rsv, op = b[0] & 0x80, b[0] & 0x70, b[0] & 0x0F
        masked, n = b[1] & 0x80, b[1] & 0x7F
        pos = 2
        if rsv:
            raise ProtocolError(1002, "reserved bits set")
        if not masked:
            raise ProtocolError(1002, "unmasked client frame")
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack_from("!H", b, 2)[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack_from("!Q", b, 2)[0]
            pos = 10
        if op >= 8 and (n > 125 or not fin):
            raise ProtocolError(1002, "bad control frame")
        if n > self.max or len(self.frag) + n > self.max:
            raise ProtocolError(1009, "message too big")
        if len(b) < pos + 4 + n:
            return None
        mask = b[pos:pos + 4]
        pos += 4
        payload = bytes(x ^ mask[i & 3] for i, x in enumerate(b[pos:pos + n])) if n < 64 else _unmask(b[pos:pos + n], mask)
        del self.buf[:pos + n]
        if op >= 8:
            return (op, payload)
        if op == OP_CONT:
            if self.frag_op is None:
                raise ProtocolError(1002, "continuation without a start")
            self.frag += payload
            if fin:
                m = (self.frag_op, bytes(self.frag))
                self.frag_op, self.frag = None, bytearray()
                return m
            return self._one()
        if op not in (OP_TEXT, OP_BINARY):
            raise ProtocolError(1002, "unknown opcode %d" % op)
        if self.frag_op is not None:
            raise ProtocolError(1002, "new message inside a fragmented one")
        if fin:
            return (op, payload)
        self.frag_op, self.frag = op, bytearray(payload)
        return self._one()


def _unmask(data, mask):
    n = len(data)
    key = int.from_bytes((bytes(mask) * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(bytes(data), "big") ^ key).to_bytes(n, "big")
