"""Raw WebSocket and HTTP over plain sockets, for tests that must send what
no WebSocket library would (bad framing, unmasked frames, garbage heads) or
must not read what the server sends (never-reading consumers)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = True, rsv: int = 0,
                 mask: bytes | None = None, declared_length: int | None = None) -> bytes:
    """One client frame built by hand (RFC 6455 5.2). `declared_length`
    lies about the payload length in the header."""
    length = len(payload) if declared_length is None else declared_length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack(">H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack(">Q", length)
    if not masked:
        return bytes(head) + payload
    mask = mask if mask is not None else os.urandom(4)
    return bytes(head) + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack(">H", code) + reason


def raw_connect(port: int, rcvbuf: int | None = None, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def read_to_eof(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes; (data, closed)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk


def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    with raw_connect(port) as sock:
        sock.sendall(request)
        return read_to_eof(sock, timeout)


def status_of(response: bytes) -> int:
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), f"not an HTTP/1.1 response: {response[:200]!r}"
    return int(line.split()[1])


def headers_of(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    out = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def upgrade_request(path: str = "/ws", key: str | None = None, version: str = "13", extra: str = "",
                    method: str = "GET", upgrade: bool = True) -> tuple[bytes, str]:
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                  f"Sec-WebSocket-Version: {version}"]
    request = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return request.encode(), key


class RawWs:
    """A WebSocket connection over a raw socket, opened by hand."""

    def __init__(self, sock: socket.socket, buffered: bytes):
        self.sock = sock
        self.buf = bytearray(buffered)

    @classmethod
    def open(cls, port: int, path: str = "/ws", rcvbuf: int | None = None) -> "RawWs":
        sock = raw_connect(port, rcvbuf=rcvbuf)
        request, key = upgrade_request(path)
        sock.sendall(request)
        data = bytearray()
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in data:
            assert time.monotonic() < deadline, f"no handshake response: {bytes(data)!r}"
            chunk = sock.recv(4096)
            assert chunk, f"closed during the handshake: {bytes(data)!r}"
            data += chunk
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        assert status_of(head) == 101, head
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        assert headers_of(head + b"\r\n\r\n")["sec-websocket-accept"] == accept
        ws = cls(sock, rest)
        if path == "/ws":
            opcode, payload = ws.read_frame()
            assert (opcode, json.loads(payload)) == (1, {"type": "welcome", "protocol": "streamgate.v1",
                                                         "subject": "anonymous", "expires_at": None})
        return ws

    def _need(self, n: int, deadline: float) -> None:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes buffered")
            self.buf += chunk

    def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """Next complete server message frame: (opcode, payload). Server
        frames must be unmasked and (for this server) unfragmented."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert b0 & 0x80, "server sent a fragmented frame"
        assert b0 & 0x70 == 0, "server set reserved bits"
        assert not b1 & 0x80, "server frames must not be masked"
        length, offset = b1 & 0x7F, 2
        if length == 126:
            self._need(4, deadline)
            length, offset = struct.unpack_from(">H", self.buf, 2)[0], 4
        elif length == 127:
            self._need(10, deadline)
            length, offset = struct.unpack_from(">Q", self.buf, 2)[0], 10
        self._need(offset + length, deadline)
        payload = bytes(self.buf[offset:offset + length])
        del self.buf[:offset + length]
        return b0 & 0x0F, payload

    def read_until_close(self, timeout: float = 5.0) -> tuple[list[tuple[int, bytes]], int | None]:
        """Frames up to the server's close frame, and its code (None when
        the close frame has no payload)."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            opcode, payload = self.read_frame(max(0.01, deadline - time.monotonic()))
            if opcode == 0x8:
                return frames, (struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None)
            frames.append((opcode, payload))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.send(client_frame(0x1, text.encode()))

    def assert_closed(self, timeout: float = 5.0) -> None:
        """The server closes the TCP connection after its close frame."""
        rest, closed = read_to_eof(self.sock, timeout)
        assert closed, "the server did not close the TCP connection"
        assert not self.buf and not rest, f"bytes after the close frame: {bytes(self.buf) + rest!r}"

    def close(self) -> None:
        self.sock.close()
