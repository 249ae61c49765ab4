"""The node's HTTP protocol: writes made in one pass of the event loop leave as one send."""

from __future__ import annotations

import asyncio
from typing import Any

from fogbank._http_server import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 3000) if name == "sockname" else default


def wrap(fake: FakeTransport) -> CoalescingTransport:
    return CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]


async def _writes_in_one_pass_are_sent_together() -> None:
    fake = FakeTransport()
    transport = wrap(fake)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"ok")
    assert fake.writes == []
    await asyncio.sleep(0)
    assert fake.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    transport.write(bytearray(b"next"))
    await asyncio.sleep(0)
    assert fake.writes[1:] == [b"next"]


async def _close_sends_what_is_held_first() -> None:
    fake = FakeTransport()
    transport = wrap(fake)
    transport.write(b"head")
    transport.write(b"body")
    transport.close()
    assert fake.writes == [b"headbody"]
    assert fake.closed
    await asyncio.sleep(0)
    assert fake.writes == [b"headbody"]


async def _nothing_is_written_to_a_closing_transport() -> None:
    fake = FakeTransport()
    transport = wrap(fake)
    transport.write(b"late")
    fake.closed = True
    await asyncio.sleep(0)
    assert fake.writes == []


async def _everything_else_is_the_real_transport() -> None:
    fake = FakeTransport()
    transport = wrap(fake)
    assert transport.get_extra_info("sockname") == ("127.0.0.1", 3000)
    assert transport.is_closing() is False


def test_writes_in_one_pass_are_sent_together() -> None:
    asyncio.run(_writes_in_one_pass_are_sent_together())


def test_close_sends_what_is_held_first() -> None:
    asyncio.run(_close_sends_what_is_held_first())


def test_nothing_is_written_to_a_closing_transport() -> None:
    asyncio.run(_nothing_is_written_to_a_closing_transport())


def test_everything_else_is_the_real_transport() -> None:
    asyncio.run(_everything_else_is_the_real_transport())
