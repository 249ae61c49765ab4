"""Frames exchanged between the front and its zygotes and environments over Unix sockets.

A frame is a 9-byte prelude (kind, header length, body length), a JSON header and a raw body, so
that payloads of several megabytes cross without being re-encoded.
"""

from __future__ import annotations

import json
import select
import socket
import struct
from typing import Any

PRELUDE = struct.Struct("!BII")

# front -> zygote
FORK = 1
# zygote -> front
FORKED = 2
EXITED = 3
# environment -> front
READY = 4
INIT_ERROR = 5
CHUNK = 7
RESULT = 8
# front -> environment
INVOKE = 6

Header = dict[str, Any]

try:  # The fast path when the interpreter has orjson (fogbank's own venv does).
    import orjson as _orjson

    def dumps(value: Any) -> bytes:
        return _orjson.dumps(value)

    def loads(raw: bytes) -> Any:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            # orjson refuses integers beyond 64 bits and NaN; the standard parser takes both.
            return json.loads(raw)

except ImportError:  # pragma: no cover - exercised on interpreters without orjson

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(raw: bytes) -> Any:
        return json.loads(raw)


def pack(kind: int, header: Header | None = None, body: bytes = b"") -> bytes:
    head = dumps(header) if header else b""
    return PRELUDE.pack(kind, len(head), len(body)) + head + body


def unpack_header(raw: bytes) -> Header:
    if not raw:
        return {}
    value = loads(raw)
    if not isinstance(value, dict):
        raise ValueError("frame header is not an object")
    return value


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    if size == 0:
        return b""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise EOFError("peer closed the socket")
        got += n
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[int, Header, bytes]:
    """Read one frame, blocking. Raises EOFError when the peer is gone."""
    kind, head_len, body_len = PRELUDE.unpack(_recv_exact(sock, PRELUDE.size))
    head = _recv_exact(sock, head_len)
    return kind, unpack_header(head), _recv_exact(sock, body_len)


class FrameReader:
    """Blocking frame reads with one `recv` per frame in the common case (small frames)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def _fill(self, need: int) -> None:
        while len(self.buf) < need:
            self.poller.poll()
            chunk = self.sock.recv(max(65536, need - len(self.buf)))
            if not chunk:
                raise EOFError("peer closed the socket")
            self.buf += chunk

    def read(self) -> tuple[int, Header, bytes]:
        size = PRELUDE.size
        self._fill(size)
        kind, head_len, body_len = PRELUDE.unpack_from(self.buf)
        end = size + head_len + body_len
        self._fill(end)
        buf = self.buf
        head = unpack_header(bytes(buf[size : size + head_len]))
        body = bytes(buf[size + head_len : end])
        del buf[:end]
        return kind, head, body


def send_frame(
    sock: socket.socket, kind: int, header: Header | None = None, body: bytes = b""
) -> None:
    sock.sendall(pack(kind, header, body))
