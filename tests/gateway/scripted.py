"""A real upstream HTTP server that answers each request with the raw bytes its path names.

HTTP_PROXY tests need answers no framework sends on purpose: bodies cut short, malformed heads,
silence. `Scripted` reads requests itself (keep-alive, Content-Length bodies) on a thread per
connection and counts connections, so tests can tell a reused connection from a new one.
"""

from __future__ import annotations

import hashlib
import socket
import socketserver
import threading
from collections.abc import Callable

from .test_discovered_services import Listener

BIG = bytes(range(256)) * (5 * 4096)
"""A 5 MiB body, patterned so that a lost or repeated piece shows."""
BIG_SHA = hashlib.sha256(BIG).hexdigest()


def _ok(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"content-length: {len(body)}", "content-type: text/plain", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Answer = Callable[["Scripted", socket.socket, bytes, bytes], bool]
"""Writes an answer to (server, socket, request head, request body); false closes the
connection."""


def _send(*parts: bytes, keep: bool = True) -> Answer:
    """Writes `parts` one by one; `keep` false closes the connection after them."""

    def answer(server: Scripted, sock: socket.socket, head: bytes, body: bytes) -> bool:
        for part in parts:
            sock.sendall(part)
        return keep

    return answer


def _echo(server: Scripted, sock: socket.socket, head: bytes, body: bytes) -> bool:
    sock.sendall(_ok(head + b"\r\n\r\n" + body))
    return True


def _hang(server: Scripted, sock: socket.socket, head: bytes, body: bytes) -> bool:
    server.released.wait(30)
    return False


def _big(server: Scripted, sock: socket.socket, head: bytes, body: bytes) -> bool:
    sock.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {len(BIG)}\r\n\r\n".encode())
    for start in range(0, len(BIG), 65536):
        sock.sendall(BIG[start : start + 65536])
    return True


def _once(server: Scripted, sock: socket.socket, head: bytes, body: bytes) -> bool:
    """Answers the first request of a connection; hangs up on the next without a word (as a
    server that closed an idle connection the client had not noticed yet)."""
    if server.local.requests > 1:
        return False
    sock.sendall(_ok(b"once"))
    return True


ANSWERS: dict[str, Answer] = {
    "/ok": _send(_ok(b"ok")),
    "/echo": _echo,
    "/chunked": _send(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n",
        b"5\r\nhello\r\n",
        b"6\r\n world\r\n",
        b"0\r\n\r\n",
    ),
    "/big": _big,
    "/close": _send(_ok(b"bye", "connection: close"), keep=False),
    "/eof": _send(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", b"until ", b"the end", keep=False
    ),
    "/cut-length": _send(
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n", b"only ten..", keep=False
    ),
    "/cut-small": _send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..", keep=False),
    "/cut-chunked": _send(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"5\r\nhello\r\n", keep=False
    ),
    "/head": _send(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\ncontent-type: text/plain\r\n\r\n"),
    "/no-content": _send(b"HTTP/1.1 204 No Content\r\nx-kind: none\r\n\r\n"),
    "/not-modified": _send(b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 9\r\n\r\n'),
    "/continue": _send(b"HTTP/1.1 100 Continue\r\n\r\n", _ok(b"after 100")),
    "/garbage": _send(b"NOT HTTP AT ALL\r\n\r\n", keep=False),
    "/hang": _hang,
    "/hang-up": lambda server, sock, head, body: False,
    "/once": _once,
}


class Scripted(Listener):
    """The upstream: `connections` accepted so far, `heads` of the requests received."""

    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.released = threading.Event()
        self.local = threading.local()
        """`requests`: how many requests the current connection has carried."""
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                owner.local.requests = 0
                sock: socket.socket = self.request
                pending = b""
                while True:
                    while b"\r\n\r\n" not in pending:
                        data = sock.recv(65536)
                        if not data:
                            return
                        pending += data
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    length = _content_length(head)
                    while len(pending) < length:
                        pending += sock.recv(65536)
                    body, pending = pending[:length], pending[length:]
                    owner.heads.append(head)
                    owner.local.requests += 1
                    path = head.split(b" ")[1].decode().partition("?")[0]
                    if not ANSWERS[path](owner, sock, head, body):
                        return

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        super().__init__(server)

    def stop(self) -> None:
        self.released.set()
        super().stop()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
