"""One HTTP/1.1 connection to an upstream, and the answer it is reading (see `_upstream`).

A `Connection` is an asyncio protocol feeding httptools: it writes a request, resolves `head`
when the answer's head is in (with the body too when that is small and of known length), hands
the body on through the `UpstreamResponse` as it arrives (reading paused while the caller lags),
and goes back to its pool, or closes, when the answer ends. Failures are `UpstreamError`s that
say how far the request got: `ConnectionFailed` (no byte of an answer came back) or
`BrokenResponse` (part of one did), `UpstreamTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from fogbank._errors import FogbankError

if TYPE_CHECKING:
    from fogbank.gateway._upstream import Upstream

_HIGH_WATER = 256 * 1024
"""Body bytes waiting for the caller above which the connection stops reading (until the
caller takes them)."""
_SMALL_DIGITS = 5
"""Bodies whose Content-Length has at most this many digits (under 100 kB) come whole with the
head."""
_NO_BODY_STATUSES = frozenset({204, 304})

Key = tuple[str, str, int]
"""Where a connection goes: (scheme, host, port)."""


class UpstreamError(FogbankError):
    """Forwarding a request failed; the subclass says how far it got."""


class ConnectionFailed(UpstreamError):
    """No byte of an answer came back: the connection was refused or could not be made, or it
    closed or reset before the answer began. Another server may be asked."""


class BrokenResponse(UpstreamError):
    """The answer began but was malformed, or the connection ended before its last byte."""


class UpstreamTimeout(UpstreamError):
    """No answer (or no further body bytes) within the integration's timeout."""


class ConnectTimeout(UpstreamTimeout):
    """The connection itself was not made in time."""


class InvalidRequest(UpstreamError):
    """The request cannot be written: a URL or header the mappings built is not valid HTTP."""


class UpstreamResponse:
    """An answer whose head has arrived; the body follows through `stream()`.

    `headers` are (lower-case name, value) pairs as sent. When `complete` is true the whole
    body is already here (`body()`), the common case for small answers.
    """

    __slots__ = ("_chunks", "_conn", "_done", "_error", "_size", "_waiter", "headers", "status")

    def __init__(self, conn: Connection) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._conn: Connection | None = conn
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def complete(self) -> bool:
        """The whole body has arrived."""
        return self._done and self._error is None

    def body(self) -> bytes:
        """The body received so far (all of it once `complete`)."""
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        return body

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces; raises `BrokenResponse` or `UpstreamTimeout` when
        it stops short. Leaving early closes the connection (the rest is never read)."""
        try:
            while True:
                if self._chunks:
                    body = self.body()
                    conn = self._conn
                    if conn is not None and conn.paused:
                        conn.resume()
                    yield body
                elif self._error is not None:
                    raise self._error
                elif self._done:
                    return
                else:
                    await self._wait()
        finally:
            self.close()

    def close(self) -> None:
        """Abandon what is left of the body: its connection cannot be reused."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            if not self._done:
                self._done = True
                conn.abort()

    async def _wait(self) -> None:
        conn = self._conn
        assert conn is not None
        loop = conn.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(conn.wait_s, expire, waiter, conn.where)
        try:
            await waiter
        except UpstreamTimeout as exc:
            self._error = exc
            self.close()
        finally:
            timer.cancel()
            self._waiter = None

    # -- fed by the connection -------------------------------------------------------------
    def _feed(self, chunk: bytes) -> bool:
        """Keep a piece of body; true when the caller has fallen behind."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._wake()
        return self._size > _HIGH_WATER

    def _finish(self, error: UpstreamError | None = None) -> None:
        self._done = True
        self._error = error
        self._conn = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def expire(future: asyncio.Future[Any], where: str) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout(f"no answer from {where} in time"))


class Connection(asyncio.Protocol):
    """One connection to an upstream: writes a request, parses its answer, then goes back to
    the pool (or closes when either side did not keep it alive)."""

    def __init__(self, pool: Upstream, key: Key, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.key = key
        self.loop = loop
        self.where = f"{key[1]}:{key[2]}"
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.head: asyncio.Future[None] | None = None
        """Resolved when the current answer's head is in (or failed before it)."""
        self.head_only = False
        self.until_eof = False
        """The current answer has neither a length nor chunks: its body ends with the
        connection."""
        self.received = False
        self.informational = False
        self.paused = False
        self.closed = False
        self.idle_at = 0.0
        self.wait_s = 0.0
        """How long the body's next bytes may take."""

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.response is None:
            self.abort()  # nothing was asked: a server talking out of turn is not reused
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self.abort(BrokenResponse(f"{self.where} switched protocols"))
        except HttpParserError as exc:
            self.abort(BrokenResponse(f"malformed answer from {self.where}: {exc}"))

    def eof_received(self) -> bool:
        # Out of the pool at once: connection_lost comes a loop turn later.
        self.closed = True
        self.pool.forget(self)
        return False  # close: an HTTP/1.1 client has nothing to say once the server is done

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None:
            return
        self.response = None
        head = self.head
        if head is not None and not head.done():
            error_type = BrokenResponse if self.received else ConnectionFailed
            head.set_exception(error_type(f"{self.where} closed the connection before answering"))
        elif self.until_eof and exc is None:
            response._finish()
        else:
            response._finish(BrokenResponse(f"{self.where} closed the connection mid-body"))

    # -- httptools callbacks -----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        if response is not None:
            response.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            # 100 Continue and other interim answers: the final one follows.
            self.informational = True
            response.headers.clear()
            return
        response.status = status
        length = None
        chunked = False
        for name, value in response.headers:
            if name == "content-length":
                length = value
            elif name == "transfer-encoding":
                chunked = True
        bodiless = self.head_only or status in _NO_BODY_STATUSES
        self.until_eof = not bodiless and length is None and not chunked
        # A small body of known length is awaited with the head: the caller then answers with
        # one body instead of a stream (head and body often come in two reads).
        small = not (bodiless or chunked) and length is not None and len(length) <= _SMALL_DIGITS
        head = self.head
        if not small and head is not None and not head.done():
            head.set_result(None)
        if self.head_only:
            # The parser cannot be told a HEAD answer has no body: end it here and parse the
            # next answer with a fresh parser.
            keep = self.parser.should_keep_alive() and not self.until_eof
            self.parser = HttpResponseParser(self)
            self._complete(keep)

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is not None and response._feed(body) and not self.paused:
            assert self.transport is not None
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if self.response is not None:
            self._complete(self.parser.should_keep_alive())

    # -- the connection's life -------------------------------------------------------------
    def send(self, data: bytes, body: bytes, head_only: bool, wait_s: float) -> UpstreamResponse:
        """Write a request; the answer's head resolves `self.head`."""
        assert self.transport is not None
        response = self.response = UpstreamResponse(self)
        self.head = self.loop.create_future()
        self.head_only = head_only
        self.until_eof = False
        self.received = False
        self.wait_s = wait_s
        try:
            self.transport.write(data)
            if body:
                self.transport.write(body)
        except RuntimeError:  # uvloop: the transport closed under us
            self.abort()
        return response

    def _complete(self, keep_alive: bool) -> None:
        response = self.response
        assert response is not None
        self.response = None
        response._finish()
        head = self.head
        if head is not None and not head.done():
            head.set_result(None)
        if self.paused:
            self.resume()
        if keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self, error: UpstreamError | None = None) -> None:
        """Drop the connection now; a request waiting on it fails with `error` (by default:
        `ConnectionFailed` before any byte of the answer, `BrokenResponse` after)."""
        self.closed = True
        self.pool.forget(self)
        response, self.response = self.response, None
        if response is not None:
            if error is None:
                error_type = BrokenResponse if self.received else ConnectionFailed
                error = error_type(f"connection to {self.where} dropped")
            head = self.head
            if head is not None and not head.done():
                head.set_exception(error)
            else:
                response._finish(error)
        if self.transport is not None:
            self.transport.abort()
