"""The async event queue: both implementations pass the same tests; the SQLite one also persists."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from fogbank.store import EventQueue, MemoryEventQueue, QueuedEvent, SqliteEventQueue

QueueFactory = Callable[[], EventQueue]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def event(event_id: str, next_attempt_at: float = 100.0, **fields: Any) -> QueuedEvent:
    return QueuedEvent(
        id=event_id,
        function_name="worker",
        qualifier="$LATEST",
        payload=b'{"n": 1}',
        enqueued_at=100.0,
        next_attempt_at=next_attempt_at,
        **fields,
    )


@pytest.fixture(params=["memory", "sqlite"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> QueueFactory:
    if request.param == "memory":
        return MemoryEventQueue
    return lambda: SqliteEventQueue(tmp_path / "queue.db")


def test_due_is_ordered_by_time_then_arrival_and_limited(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        await queue.put(event("late", 105.0))
        await queue.put(event("first", 101.0))
        await queue.put(event("second", 101.0))
        await queue.put(event("future", 200.0))
        assert [e.id for e in await queue.due(150.0, 10)] == ["first", "second", "late"]
        assert [e.id for e in await queue.due(150.0, 2)] == ["first", "second"]
        assert await queue.due(100.0, 10) == []
        assert await queue.pending_count() == 4
        await queue.close()

    run(scenario())


def test_an_event_keeps_every_field(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        original = event(
            "e1",
            attempts=1,
            invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:worker:live",
            client_context='{"custom": {}}',
            tenant_id="tenant-a",
        )
        await queue.put(original)
        assert await queue.due(100.0, 1) == [original]
        await queue.close()

    run(scenario())


def test_a_repeated_id_is_stored_once(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        await queue.put(event("e1"))
        await queue.put(event("e1", 50.0))
        assert [e.next_attempt_at for e in await queue.due(1e9, 10)] == [100.0]
        await queue.close()

    run(scenario())


def test_a_claimed_event_is_not_due_until_its_lease_ends(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        await queue.put(event("e1"))
        assert await queue.claim("e1", 100.0, 160.0)
        assert not await queue.claim("e1", 101.0, 170.0)
        assert await queue.due(159.0, 10) == []
        assert await queue.next_due_at() == 160.0
        # The lease ran out: the dispatcher that held it is presumed gone.
        assert [e.id for e in await queue.due(160.0, 10)] == ["e1"]
        assert await queue.claim("e1", 160.0, 220.0)
        assert not await queue.claim("missing", 160.0, 220.0)
        await queue.close()

    run(scenario())


def test_reschedule_sets_attempts_and_drops_the_lease(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        await queue.put(event("e1"))
        assert await queue.claim("e1", 100.0, 1000.0)
        await queue.reschedule("e1", 130.0, 2)
        assert await queue.due(129.0, 10) == []
        [again] = await queue.due(130.0, 10)
        assert (again.attempts, again.next_attempt_at) == (2, 130.0)
        await queue.close()

    run(scenario())


def test_release_all_frees_every_lease(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        await queue.put(event("e1"))
        await queue.put(event("e2"))
        assert await queue.claim("e1", 100.0, 1000.0)
        assert [e.id for e in await queue.due(100.0, 10)] == ["e2"]
        await queue.release_all()
        assert [e.id for e in await queue.due(100.0, 10)] == ["e1", "e2"]
        await queue.close()

    run(scenario())


def test_delete_stores_the_follow_up_in_its_place(make_queue: QueueFactory) -> None:
    async def scenario() -> None:
        queue = make_queue()
        assert await queue.next_due_at() is None
        await queue.put(event("e1"))
        await queue.put(event("e2", 300.0))
        await queue.delete("e1", follow_up=event("record", 120.0))
        assert [e.id for e in await queue.due(1e9, 10)] == ["record", "e2"]
        assert await queue.next_due_at() == 120.0
        await queue.delete("record")
        await queue.delete("e2")
        await queue.delete("never-stored")
        assert await queue.pending_count() == 0
        assert await queue.next_due_at() is None
        await queue.close()

    run(scenario())


def test_sqlite_events_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "queue.db"

    async def scenario() -> None:
        first = SqliteEventQueue(path)
        await first.put(event("kept", tenant_id="t1"))
        await first.put(event("claimed"))
        # A dispatcher claims an event, then the node dies without finishing or releasing it.
        assert await first.claim("claimed", 100.0, 10_000.0)
        await first.close()

        second = SqliteEventQueue(path)
        assert await second.pending_count() == 2
        assert [e.id for e in await second.due(100.0, 10)] == ["kept"]
        await second.release_all()
        due = await second.due(100.0, 10)
        assert [e.id for e in due] == ["kept", "claimed"]
        assert due[0] == event("kept", tenant_id="t1")
        await second.close()

    run(scenario())


def test_sqlite_queue_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    run(SqliteEventQueue(path).close())
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
