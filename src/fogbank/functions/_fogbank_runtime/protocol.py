"""Frames exchanged between the front and its zygotes and environments over Unix sockets.

A frame is a 9-byte prelude (kind, header length, body length), a JSON header and a raw body, so
that payloads of several megabytes cross without being re-encoded.
"""

from __future__ import annotations

import json
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


def pack(kind: int, header: Header | None = None, body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode() if header else b""
    return PRELUDE.pack(kind, len(head), len(body)) + head + body


def unpack_header(raw: bytes) -> Header:
    if not raw:
        return {}
    value = json.loads(raw)
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


def send_frame(
    sock: socket.socket, kind: int, header: Header | None = None, body: bytes = b""
) -> None:
    sock.sendall(pack(kind, header, body))
