"""The HTTP_PROXY client (`Upstream`) against a real scripted server, on asyncio's and uvloop's
loops: bodies of every framing, keep-alive reuse, and how far a failed request got."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import uvloop

from fogbank.gateway._connection import (
    BrokenResponse,
    ConnectionFailed,
    InvalidRequest,
    UpstreamResponse,
    UpstreamTimeout,
)
from fogbank.gateway._upstream import Upstream, split_url

from .scripted import BIG_SHA, Scripted

T = TypeVar("T")


class Run:
    """Runs a coroutine with a fresh `Upstream` on one kind of loop, closing it after."""

    def __init__(self, loop: str) -> None:
        self.loop = loop

    def __call__(self, work: Callable[[Upstream], Awaitable[T]]) -> T:
        async def main() -> T:
            upstream = Upstream()
            try:
                return await work(upstream)
            finally:
                await upstream.close()

        if self.loop == "uvloop":
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main())
        return asyncio.run(main())


@pytest.fixture(scope="module")
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    yield scripted
    scripted.stop()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    return Run(request.param)


async def get(
    upstream: Upstream,
    server: Scripted,
    path: str,
    method: str = "GET",
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout_s: float = 10.0,
) -> UpstreamResponse:
    host = f"127.0.0.1:{server.port}"
    key = ("http", "127.0.0.1", server.port)
    return await upstream.request(method, key, host, path, headers or [], body, timeout_s)


async def read(response: UpstreamResponse) -> bytes:
    if response.complete:
        return response.body()
    return b"".join([chunk async for chunk in response.stream()])


async def answer(upstream: Upstream, server: Scripted, path: str, method: str = "GET") -> bytes:
    return await read(await get(upstream, server, path, method))


def test_keep_alive_connections_are_reused(server: Scripted, run: Run) -> None:
    before = server.connections

    async def work(upstream: Upstream) -> list[bytes]:
        return [await answer(upstream, server, "/ok") for _ in range(5)]

    assert run(work) == [b"ok"] * 5
    assert server.connections == before + 1


def test_concurrent_requests_each_take_a_connection(server: Scripted, run: Run) -> None:
    before = server.connections

    async def work(upstream: Upstream) -> list[bytes]:
        first = await asyncio.gather(*(answer(upstream, server, "/ok") for _ in range(4)))
        second = await asyncio.gather(*(answer(upstream, server, "/ok") for _ in range(4)))
        return first + second

    assert run(work) == [b"ok"] * 8
    assert server.connections == before + 4


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/chunked", b"hello world"),
        ("/eof", b"until the end"),
        ("/continue", b"after 100"),
    ],
)
def test_bodies_of_every_framing(server: Scripted, run: Run, path: str, expected: bytes) -> None:
    async def work(upstream: Upstream) -> tuple[int, bytes]:
        response = await get(upstream, server, path)
        return response.status, await read(response)

    assert run(work) == (200, expected)


def test_a_large_body_is_streamed_whole(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> tuple[str, int, bytes]:
        response = await get(upstream, server, "/big")
        digest = hashlib.sha256()
        pieces = 0
        async for chunk in response.stream():
            digest.update(chunk)
            pieces += 1
            await asyncio.sleep(0)  # a caller slower than the network: reading pauses
        # The connection went back to the pool: the next request reuses it.
        return digest.hexdigest(), pieces, await answer(upstream, server, "/ok")

    before = server.connections
    sha, pieces, after = run(work)
    assert (sha, after) == (BIG_SHA, b"ok")
    assert pieces > 1
    assert server.connections == before + 1


def test_after_connection_close_a_new_connection_is_made(server: Scripted, run: Run) -> None:
    before = server.connections

    async def work(upstream: Upstream) -> list[bytes]:
        return [await answer(upstream, server, p) for p in ("/close", "/ok", "/ok", "/close")]

    assert run(work) == [b"bye", b"ok", b"ok", b"bye"]
    assert server.connections == before + 2


@pytest.mark.parametrize(
    ("path", "method", "status", "header"),
    [
        ("/head", "HEAD", 200, ("content-length", "1234")),
        ("/no-content", "GET", 204, ("x-kind", "none")),
        ("/not-modified", "GET", 304, ("etag", '"v1"')),
    ],
)
def test_answers_without_a_body_keep_the_connection(
    server: Scripted, run: Run, path: str, method: str, status: int, header: tuple[str, str]
) -> None:
    before = server.connections

    async def work(upstream: Upstream) -> tuple[int, list[tuple[str, str]], bytes, bytes]:
        response = await get(upstream, server, path, method)
        assert response.complete
        body = await read(response)
        return response.status, response.headers, body, await answer(upstream, server, "/ok")

    got_status, headers, body, after = run(work)
    assert (got_status, body, after) == (status, b"", b"ok")
    assert header in headers
    assert server.connections == before + 1


def test_the_request_as_sent(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> bytes:
        response = await get(
            upstream,
            server,
            "/echo?a=1&b=two",
            "POST",
            headers=[("x-one", "1"), ("x-one", "2"), ("content-type", "text/plain")],
            body=b"payload",
        )
        return await read(response)

    sent = run(work)
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /echo?a=1&b=two HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}".encode() in lines
    assert lines.count(b"x-one: 1") == lines.count(b"x-one: 2") == 1
    assert b"content-length: 7" in lines
    assert body == b"payload"


def test_a_header_with_a_line_break_is_refused(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> None:
        await get(upstream, server, "/ok", headers=[("x-evil", "a\r\nx-injected: 1")])

    with pytest.raises(InvalidRequest):
        run(work)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/hang-up", ConnectionFailed),  # closed before any byte of an answer: retryable
        ("/garbage", BrokenResponse),
        ("/cut-small", BrokenResponse),  # a small body is awaited with the head
    ],
)
def test_failures_say_whether_an_answer_began(
    server: Scripted, run: Run, path: str, error: type[Exception]
) -> None:
    async def work(upstream: Upstream) -> None:
        await get(upstream, server, path, "POST")

    with pytest.raises(error):
        run(work)


@pytest.mark.parametrize("path", ["/cut-length", "/cut-chunked"])
def test_a_body_cut_short_fails_the_stream(server: Scripted, run: Run, path: str) -> None:
    async def work(upstream: Upstream) -> list[bytes]:
        response = await get(upstream, server, path)
        assert not response.complete
        received: list[bytes] = []
        with pytest.raises(BrokenResponse):
            await drain(response, received)
        return received

    assert b"".join(run(work)) in (b"only ten..", b"hello")


async def drain(response: UpstreamResponse, into: list[bytes]) -> None:
    async for chunk in response.stream():
        into.append(chunk)


def test_refused_connections_fail_before_anything_is_sent(run: Run) -> None:
    closed = Scripted()
    closed.stop()

    async def work(upstream: Upstream) -> None:
        await get(upstream, closed, "/ok")

    with pytest.raises(ConnectionFailed):
        run(work)


def test_a_hung_upstream_times_out(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> None:
        await get(upstream, server, "/hang", timeout_s=0.2)

    with pytest.raises(UpstreamTimeout):
        run(work)


def test_a_kept_alive_connection_closed_under_a_get_is_retried(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> list[bytes]:
        # `/once` answers one request a connection and hangs up on the next, unanswered.
        return [await answer(upstream, server, "/once") for _ in range(3)]

    assert run(work) == [b"once"] * 3


def test_a_kept_alive_connection_closed_under_a_post_fails(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> None:
        await answer(upstream, server, "/once", "POST")
        await answer(upstream, server, "/once", "POST")

    with pytest.raises(ConnectionFailed):
        run(work)


def test_close_fails_requests_in_flight(server: Scripted, run: Run) -> None:
    async def work(upstream: Upstream) -> None:
        await answer(upstream, server, "/ok")
        pending = asyncio.ensure_future(get(upstream, server, "/hang"))
        # On a kept-alive connection the request is written in the task's first step.
        await asyncio.sleep(0)
        await upstream.close()
        await pending

    with pytest.raises(ConnectionFailed):
        run(work)


@pytest.mark.parametrize(
    ("url", "key", "host", "target"),
    [
        ("http://example.com/a?b=1#frag", ("http", "example.com", 80), "example.com", "/a?b=1"),
        ("http://Example.com:80", ("http", "example.com", 80), "Example.com", "/"),
        ("https://h:8443/x", ("https", "h", 8443), "h:8443", "/x"),
        ("http://user:pw@[::1]:9000?q", ("http", "::1", 9000), "[::1]:9000", "/?q"),
    ],
)
def test_split_url(url: str, key: tuple[str, str, int], host: str, target: str) -> None:
    assert split_url(url) == (key, host, target)


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///path", "http://h:port/"])
def test_split_url_refuses_what_is_not_http(url: str) -> None:
    with pytest.raises(InvalidRequest):
        split_url(url)
