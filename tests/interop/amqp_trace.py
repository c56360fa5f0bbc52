"""A recording proxy for plain AMQP on loopback: it forwards every byte
between a client and a server unchanged, and records each frame it sees in
each direction (size, type, channel, performative and its fields, decoded by
the official SDK's pyamqp decoder). Tests use the record to check what goes
over the wire: frame sizes against the announced max-frame-size, the order of
a disposition and a reply, the container-id of an OPEN."""
import socket
import struct
import threading

from azure.eventhub._pyamqp._decode import decode_frame

C2S, S2C = "c2s", "s2c"
OPEN, ATTACH, TRANSFER, DISPOSITION = 0x10, 0x12, 0x14, 0x15


class Frame:
    def __init__(self, direction, size, ftype, channel, code, fields):
        self.dir, self.size, self.type, self.channel = direction, size, ftype, channel
        self.code, self.fields = code, fields

    def field(self, i):
        return self.fields[i] if self.fields is not None and i < len(self.fields) else None

    def __repr__(self):
        return f"<{self.dir} size={self.size} ch={self.channel} code={self.code:#x}>"


def _decode(body):
    """(code, fields) of a performative; fields None when undecodable."""
    if len(body) < 4 or body[0] != 0x00 or body[1] != 0x53:
        return -1, None
    if body[3] == 0x45:
        return body[2], []
    try:
        return decode_frame(memoryview(body))
    except Exception:  # a frame the SDK's decoder cannot read is still recorded
        return body[2], None


class Proxy:
    """Listens on a free loopback port and relays each connection to
    127.0.0.1:upstream_port; frames land in self.frames in wire order per
    direction (each entry carries its direction)."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.frames = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, C2S), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, S2C), daemon=True).start()

    def _pump(self, src, dst, direction):
        buf = bytearray()
        while True:
            try:
                data = src.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += data
            while True:
                if len(buf) >= 8 and buf[:4] == b"AMQP":
                    del buf[:8]
                    continue
                if len(buf) < 8:
                    break
                size = struct.unpack(">I", buf[:4])[0]
                if size < 8 or len(buf) < size:
                    break
                doff, ftype, ch = buf[4] * 4, buf[5], struct.unpack(">H", buf[6:8])[0]
                code, fields = _decode(bytes(buf[doff:size])) if size > 8 else (-1, None)
                with self.lock:
                    self.frames.append(Frame(direction, size, ftype, ch, code, fields))
                del buf[:size]
            try:
                dst.sendall(data)
            except OSError:
                return

    def snapshot(self, direction=None, code=None):
        with self.lock:
            return [f for f in self.frames if (direction is None or f.dir == direction)
                    and (code is None or f.code == code)]

    def close(self):
        self.sock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def address(terminus):
    """The address of a decoded source or target ({code: [address, ...]})."""
    if isinstance(terminus, dict):
        terminus = next(iter(terminus.values()))
    if isinstance(terminus, (list, tuple)) and terminus:
        a = terminus[0]
        return a.decode() if isinstance(a, (bytes, bytearray)) else a
    return None
