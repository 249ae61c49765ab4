"""The durable queue behind asynchronous (`Event`) invocations: in memory, or in a SQLite file.

A queue holds events that were acknowledged with a 202 and have not finished yet. The dispatcher
reads the due ones, *claims* each before running it (a lease, so that a second dispatcher on the
same queue leaves it alone), then deletes or reschedules it. A claim is only ever a hint: an event
whose dispatcher died keeps its row, and runs again once its lease expires or the next dispatcher
calls `release_all()` at start-up. That is Lambda's own at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One accepted `Event` invocation waiting for its next attempt."""

    id: str
    """The request id the caller was given; every retry runs under the same id, as on AWS."""
    function_name: str
    qualifier: str
    """`$LATEST`, a version number or an alias name, resolved again at every attempt."""
    payload: bytes
    enqueued_at: float
    """Epoch seconds of acceptance; the event age (`MaximumEventAgeInSeconds`) counts from here."""
    next_attempt_at: float
    """Epoch seconds before which the event is not due."""
    attempts: int = 0
    """Invocations that ran so far (throttled tries are not counted, as on AWS)."""
    invoked_arn: str = ""
    """The ARN the caller named (qualified or not), handed to the function as its context."""
    client_context: str | None = None
    tenant_id: str | None = None


class EventQueue(Protocol):
    """Where accepted async events wait; every method returns once its change is stored."""

    async def put(self, event: QueuedEvent) -> None:
        """Store a new event durably: after this returns it survives a crash of the node.

        An id already stored is ignored: it is the same event handed over twice.
        """
        ...

    async def due(self, now: float, limit: int) -> list[QueuedEvent]:
        """Unclaimed events with `next_attempt_at <= now`, oldest due first."""
        ...

    async def claim(self, event_id: str, now: float, until: float) -> bool:
        """Lease an event until `until`; False when it is gone or leased past `now` by another."""
        ...

    async def reschedule(self, event_id: str, next_attempt_at: float, attempts: int) -> None:
        """Set the next attempt and the attempt count, and drop the lease."""
        ...

    async def delete(self, event_id: str, follow_up: QueuedEvent | None = None) -> None:
        """Remove a finished event and, in the same transaction, store `follow_up` if given.

        The follow-up is the destination invocation: storing it atomically with the removal means a
        crash either keeps the original (which then runs again) or has already queued the record.
        """
        ...

    async def release_all(self) -> None:
        """Drop every lease: the previous owner of the queue is gone (a restart after a crash)."""
        ...

    async def next_due_at(self) -> float | None:
        """When the earliest event becomes due (or its lease runs out); None when empty."""
        ...

    async def pending_count(self) -> int:
        """Events stored, claimed or not."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Slot:
    event: QueuedEvent
    seq: int
    """Insertion order, so that events due at the same moment run first-in first-out."""
    leased_until: float = 0.0


class MemoryEventQueue:
    """An `EventQueue` in a dict: the same behaviour as the SQLite queue, without the durability."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._seq = 0

    async def put(self, event: QueuedEvent) -> None:
        self._put(event)

    def _put(self, event: QueuedEvent) -> None:
        # A repeated id is the same event submitted twice (e.g. a replayed follow-up): keep one.
        if event.id not in self._slots:
            self._seq += 1
            self._slots[event.id] = _Slot(event, self._seq)

    async def due(self, now: float, limit: int) -> list[QueuedEvent]:
        ready = [
            slot
            for slot in self._slots.values()
            if slot.event.next_attempt_at <= now and slot.leased_until <= now
        ]
        ready.sort(key=lambda slot: (slot.event.next_attempt_at, slot.seq))
        return [slot.event for slot in ready[:limit]]

    async def claim(self, event_id: str, now: float, until: float) -> bool:
        slot = self._slots.get(event_id)
        if slot is None or slot.leased_until > now:
            return False
        slot.leased_until = until
        return True

    async def reschedule(self, event_id: str, next_attempt_at: float, attempts: int) -> None:
        slot = self._slots.get(event_id)
        if slot is not None:
            slot.event = replace(slot.event, next_attempt_at=next_attempt_at, attempts=attempts)
            slot.leased_until = 0.0

    async def delete(self, event_id: str, follow_up: QueuedEvent | None = None) -> None:
        self._slots.pop(event_id, None)
        if follow_up is not None:
            self._put(follow_up)

    async def release_all(self) -> None:
        for slot in self._slots.values():
            slot.leased_until = 0.0

    async def next_due_at(self) -> float | None:
        times = [max(s.event.next_attempt_at, s.leased_until) for s in self._slots.values()]
        return min(times, default=None)

    async def pending_count(self) -> int:
        return len(self._slots)

    async def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    invoked_arn TEXT NOT NULL,
    payload BLOB NOT NULL,
    client_context TEXT,
    tenant_id TEXT,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt_at, seq);
"""

_COLUMNS = (
    "id, function_name, qualifier, payload, enqueued_at, next_attempt_at, attempts, invoked_arn,"
    " client_context, tenant_id"
)
_INSERT = f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _row(event: QueuedEvent) -> tuple[object, ...]:
    return (
        event.id,
        event.function_name,
        event.qualifier,
        event.payload,
        event.enqueued_at,
        event.next_attempt_at,
        event.attempts,
        event.invoked_arn,
        event.client_context,
        event.tenant_id,
    )


class SqliteEventQueue:
    """An `EventQueue` in one SQLite file (WAL mode), owned by one node at a time.

    Every call runs in a worker thread (`asyncio.to_thread`): a commit that reaches the disk takes
    milliseconds, and the event loop that runs it also serves the data plane. One lock serialises
    the threads, because one connection cannot run two transactions at once.

    Durability is chosen per operation. `put` commits with `synchronous=FULL`, so that the WAL is
    flushed to disk before the 202 goes out: an acknowledged event survives a power cut, not only a
    process crash. Everything else commits with `synchronous=NORMAL` (safe against a process crash;
    a power cut may undo the last claims or deletions), because losing one of those only means that
    an event runs once more, which at-least-once delivery allows anyway.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each method opens its own with BEGIN.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def put(self, event: QueuedEvent) -> None:
        await asyncio.to_thread(self._put, event)

    def _put(self, event: QueuedEvent) -> None:
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute(_INSERT, _row(event))
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")

    async def due(self, now: float, limit: int) -> list[QueuedEvent]:
        rows = await asyncio.to_thread(
            self._fetch,
            f"SELECT {_COLUMNS} FROM events WHERE next_attempt_at <= ? AND leased_until <= ?"
            " ORDER BY next_attempt_at, seq LIMIT ?",
            (now, now, limit),
        )
        return [QueuedEvent(*row) for row in rows]

    async def claim(self, event_id: str, now: float, until: float) -> bool:
        changed = await asyncio.to_thread(
            self._change,
            "UPDATE events SET leased_until = ? WHERE id = ? AND leased_until <= ?",
            (until, event_id, now),
        )
        return changed == 1

    async def reschedule(self, event_id: str, next_attempt_at: float, attempts: int) -> None:
        await asyncio.to_thread(
            self._change,
            "UPDATE events SET next_attempt_at = ?, attempts = ?, leased_until = 0 WHERE id = ?",
            (next_attempt_at, attempts, event_id),
        )

    async def delete(self, event_id: str, follow_up: QueuedEvent | None = None) -> None:
        await asyncio.to_thread(self._delete, event_id, follow_up)

    def _delete(self, event_id: str, follow_up: QueuedEvent | None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))
                if follow_up is not None:
                    self._db.execute(_INSERT, _row(follow_up))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    async def release_all(self) -> None:
        await asyncio.to_thread(self._change, "UPDATE events SET leased_until = 0", ())

    async def next_due_at(self) -> float | None:
        rows = await asyncio.to_thread(
            self._fetch, "SELECT MIN(MAX(next_attempt_at, leased_until)) FROM events", ()
        )
        value = rows[0][0]
        return None if value is None else float(value)

    async def pending_count(self) -> int:
        rows = await asyncio.to_thread(self._fetch, "SELECT COUNT(*) FROM events", ())
        return int(rows[0][0])

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self._db.execute(sql, params).fetchall()
            return rows

    def _change(self, sql: str, params: tuple[object, ...]) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount
