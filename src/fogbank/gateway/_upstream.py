"""The HTTP/1.1 client of HTTP_PROXY integrations: keep-alive pools on asyncio protocols.

One `Upstream` per gateway keeps idle connections per (scheme, host, port), newest first, and
drops one that idled `idle_s` (before the 5 s after which uvicorn and many servers close theirs).
A connection (`_connection.Connection`) carries one request at a time; as many connections open
as requests are in flight. Errors say how far a request got, which is what the retry logic
needs: `ConnectionFailed` (nothing of an answer came back), `BrokenResponse` (part of one did),
`UpstreamTimeout` / `ConnectTimeout`, `InvalidRequest` (nothing was sent). Why this and not httpx
or aiohttp: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import ssl

from fogbank.gateway._connection import (
    Connection,
    ConnectionFailed,
    ConnectTimeout,
    InvalidRequest,
    Key,
    UpstreamResponse,
    expire,
)

# Methods whose requests carry a Content-Length even when empty (servers may want one).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A retry of these has the effect of one request (RFC 9110 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Upstream:
    """Sends requests over pooled HTTP/1.1 keep-alive connections and hands back the answers.

    `idle_s` is how long an idle connection is kept; `max_idle` how many are kept per
    (scheme, host, port). Every connection is closed by `close()`.
    """

    def __init__(self, *, idle_s: float = 4.0, max_idle: int = 256) -> None:
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._idle: dict[Key, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        key: Key,
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

    def _pooled(self, key: Key, now: float) -> Connection | None:
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
        self, key: Key, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> Connection:
        scheme, host, port = key
        if self._closed:
            raise ConnectionFailed("the gateway is stopping")
        tls = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, key, loop), host, port, ssl=tls
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

    def release(self, conn: Connection) -> None:
        """An answered connection that may take another request."""
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_at = conn.loop.time()
        idle.append(conn)

    def forget(self, conn: Connection) -> None:
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
    conn: Connection, data: bytes, body: bytes, head_only: bool, deadline: float, wait_s: float
) -> UpstreamResponse:
    response = conn.send(data, body, head_only, wait_s)
    head = conn.head
    assert head is not None
    if not head.done():
        timer = conn.loop.call_at(deadline, expire, head, conn.where)
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


def split_url(url: str) -> tuple[Key, str, str]:
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
