"""HTTP/1.1 for the Runtime API: one keep-alive connection, one request at a time, through h11.

h11 is used rather than a web framework because the Runtime API needs what frameworks hide: chunked
request bodies handed over chunk by chunk as they arrive, trailers after the last chunk, and
`Expect: 100-continue`, all on the single connection awslambdaric keeps open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

import h11

_READ_SIZE = 65536
# Trailers carry a base64 error body and awslambdaric allows a 1 MB X-Ray header: h11's 16 KB
# default for an incomplete head would reject both.
_MAX_HEAD_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes
    """The body, or its first `limit` bytes."""
    size: int
    """The full size, counted even past the limit."""


class Exchange:
    """One keep-alive HTTP/1.1 connection, one request at a time, parsed and framed by h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        self._request: h11.Request | None = None
        self._headers: dict[str, str] = {}
        self._body_done = False
        self._peer_closed = False

    @property
    def method(self) -> str:
        return self._request.method.decode() if self._request else ""

    @property
    def path(self) -> str:
        return self._request.target.decode().partition("?")[0] if self._request else ""

    def header(self, name: str) -> str | None:
        return self._headers.get(name.lower())

    async def next_request(self) -> bool:
        """Wait for the next request on the connection; False once it is over."""
        if self._request is not None:
            done = (self._conn.our_state, self._conn.their_state) == (h11.DONE, h11.DONE)
            if self._peer_closed or not done:
                return False
            self._conn.start_next_cycle()
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return False
        self._request, self._body_done = event, False
        self._headers = {k.decode(): v.decode(errors="replace") for k, v in event.headers}
        return True

    async def _next_event(self) -> object:
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self._conn.receive_data(await self._reader.read(_READ_SIZE))

    async def wait_closed(self) -> bool:
        """Watch the socket while a request waits; True when the peer hung up."""
        data = await self._reader.read(_READ_SIZE)
        if data:
            self._conn.receive_data(data)  # pipelined: h11 keeps it for the next cycle
            return False
        self._peer_closed = True
        return True

    def _continue(self) -> None:
        # curl sends `Expect: 100-continue` for large bodies and waits for this before sending.
        if self._conn.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))

    async def read_body(self, limit: int) -> Body:
        """Read the whole body, keeping at most `limit` bytes (the connection stays usable)."""
        data, size = bytearray(), 0
        if self._body_done:
            return Body(b"", 0)
        self._continue()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size <= limit:
                    data += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True
                return Body(bytes(data), size)
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in a body")

    async def stream_body(self, on_chunk: Callable[[bytes], Awaitable[None]]) -> dict[str, str]:
        """Pass each chunk on as it completes; returns the trailers."""
        chunked = "chunked" in (self.header("transfer-encoding") or "").lower()
        pending = bytearray()
        self._continue()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                pending += event.data
                # h11 may split one HTTP chunk over several events; pass on whole chunks.
                if pending and (event.chunk_end or not chunked):
                    await on_chunk(bytes(pending))
                    pending.clear()
            elif isinstance(event, h11.EndOfMessage):
                if pending:
                    await on_chunk(bytes(pending))
                self._body_done = True
                return {k.decode(): v.decode(errors="replace") for k, v in event.headers}
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in a body")

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        self._send(
            h11.Response(
                status_code=status,
                headers=[(k.encode(), v.encode()) for k, v in fields],
                reason=HTTPStatus(status).phrase.encode(),
            )
        )
        if body:
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())
        await self._writer.drain()

    def _send(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data:
            self._writer.write(data)
