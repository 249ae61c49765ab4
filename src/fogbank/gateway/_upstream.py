"""The HTTP/1.1 client of HTTP_PROXY integrations: keep-alive pools on asyncio protocols.

One `Upstream` per gateway keeps idle connections per (scheme, host, port), newest first, and
drops one that idled `idle_s` (before the 5 s after which uvicorn and many servers close theirs).
A connection carries one request at a time; as many connections open as requests are in flight.
httptools parses the answers; the body reaches the caller as it arrives, with reading paused
while the caller lags. Errors say how far a request got, which is what the retry logic needs:
`ConnectionFailed` (nothing of an answer came back), `BrokenResponse` (part of one did),
`UpstreamTimeout` / `ConnectTimeout`. Why this and not httpx or aiohttp: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from fogbank._errors import FogbankError

_HIGH_WATER = 256 * 1024
"""Body bytes waiting for the caller above which the connection stops reading (until the
caller takes them)."""
# Methods whose requests carry a Content-Length even when empty (servers may want one).
_SMALL_DIGITS = 5
"""Bodies whose Content-Length has at most this many digits (under 100 kB) come whole with the
head."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_NO_BODY_STATUSES = frozenset({204, 304})
_DEFAULT_PORTS = {"http": 80, "https": 443}

_Key = tuple[str, str, int]


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

    def __init__(self, conn: _Connection) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._conn: _Connection | None = conn
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
        timer = loop.call_later(conn.wait_s, _expire, waiter, conn.where)
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


def _expire(future: asyncio.Future[Any], where: str) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout(f"no answer from {where} in time"))


class _Connection(asyncio.Protocol):
    """One connection to an upstream: writes a request, parses its answer, then goes back to
    the pool (or closes when either side did not keep it alive)."""

    def __init__(self, pool: Upstream, key: _Key, loop: asyncio.AbstractEventLoop) -> None:
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
        `ConnectionFailed` before the answer's head, `BrokenResponse` after)."""
        self.closed = True
        self.pool.forget(self)
        response, self.response = self.response, None
        head = self.head
        if head is not None and not head.done():
            head.set_exception(error or ConnectionFailed(f"connection to {self.where} dropped"))
        elif response is not None:
            response._finish(error or BrokenResponse(f"connection to {self.where} dropped"))
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    """Sends requests over pooled HTTP/1.1 keep-alive connections and hands back the answers.

    `idle_s` is how long an idle connection is kept; `max_idle` how many are kept per
    (scheme, host, port). Every connection is closed by `close()`.
    """

    def __init__(self, *, idle_s: float = 4.0, max_idle: int = 256) -> None:
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._idle: dict[_Key, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        key: _Key,
        host_header: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_s: float,
    ) -> UpstreamResponse:
        """Send `method target` to `key` = (scheme, host, port) and return once the answer's
        head is in. `timeout_s` bounds connecting, sending and the head together, then each wait
        for more body. An idempotent request that finds a kept-alive connection closed under it
        goes again on a new one."""
        data = _encode(method, target, host_header, headers, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        retry = method in _IDEMPOTENT
        fresh = False
        while True:
            # The retry takes a new connection: the other idle ones may be as stale.
            conn = None if fresh else self._pooled(key, loop.time())
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, deadline, loop)
            try:
                return await _exchange(conn, data, body, method == "HEAD", deadline, timeout_s)
            except ConnectionFailed:
                if not (reused and retry):
                    raise
                fresh = True

    def _pooled(self, key: _Key, now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_at < self.idle_s:
                return conn
            # The newest idle connection is too old, and the rest are older.
            for old in (conn, *idle):
                old.close()
            idle.clear()
        return None

    async def _connect(
        self, key: _Key, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> _Connection:
        scheme, host, port = key
        if self._closed:
            raise ConnectionFailed("the gateway is stopping")
        tls = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, key, loop), host, port, ssl=tls
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConnectionFailed(f"cannot connect to {host}:{port}: {reason}") from exc
        self._open.add(conn)
        return conn

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def release(self, conn: _Connection) -> None:
        """An answered connection that may take another request."""
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_at = conn.loop.time()
        idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        """A connection that closed (or is closing) leaves the pool."""
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        """Close every connection, idle or busy; later requests fail."""
        self._closed = True
        for conn in list(self._open):
            conn.abort()
        self._open.clear()
        self._idle.clear()


async def _exchange(
    conn: _Connection, data: bytes, body: bytes, head_only: bool, deadline: float, wait_s: float
) -> UpstreamResponse:
    response = conn.send(data, body, head_only, wait_s)
    head = conn.head
    assert head is not None
    if not head.done():
        timer = conn.loop.call_at(deadline, _expire, head, conn.where)
        try:
            await head
        except BaseException:
            conn.abort()  # a late answer must not be read as the next request's
            raise
        finally:
            timer.cancel()
    else:
        head.result()
    return response


def _encode(
    method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    if " " in target:
        target = target.replace(" ", "%20")  # a stage variable may hold one
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    expected = len(headers) + 3  # the request line, Host, the headers, the blank line
    if body or method in _BODY_METHODS:
        lines.append(f"content-length: {len(body)}\r\n")
        expected += 1
    lines.append("\r\n")
    head = "".join(lines)
    # A line break inside a value (a mapping can put one there) would split a header in two.
    if head.count("\n") != expected or head.count("\r") != expected:
        raise InvalidRequest("a header or the URL holds a line break")
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"a header is not Latin-1: {exc}") from None


def split_url(url: str) -> tuple[_Key, str, str]:
    """`(scheme, host, port)`, the Host header and the request target of an absolute URL."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise InvalidRequest(f"not an http(s) URL: {url}")
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if 0 <= found < end:
            end = found
    authority, target = rest[:end].rpartition("@")[2], rest[end:].partition("#")[0]
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text[1:]
    else:
        host, _, port_text = authority.partition(":")
    default = _DEFAULT_PORTS[scheme]
    if not host or (port_text and not port_text.isdigit()):
        raise InvalidRequest(f"no host and port in {url}")
    port = int(port_text) if port_text else default
    # As browsers and httpx do, the Host header leaves out the scheme's default port.
    host_header = authority[: -len(port_text) - 1] if port_text and port == default else authority
    if not target.startswith("/"):
        target = "/" + target
    return (scheme, host.lower(), port), host_header, target
