"""The admin API's durable state: one SQLite file in the state directory.

Everything the admin API creates is a record: imported APIs (with their OpenAPI body),
deployments (with the route snapshot), stages, API keys, usage plans, and the deployment each
template API was last loaded as. Records are JSON (see `_codec`) keyed by kind and id; every
admin operation writes its records in one transaction before the new app is deployed, so a
restart replays exactly what was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)
"""

Change = tuple[str, str, Any]
"""(kind, key, JSON-ready body), or a None body to delete the record."""


class AdminStore:
    """Records by kind, in the order they were first written (listings keep creation order)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._seq = 0

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def load(self) -> dict[str, dict[str, Any]]:
        """kind -> key -> body, in creation order."""
        db = self._connect()
        out: dict[str, dict[str, Any]] = {}
        rows = db.execute("SELECT kind, key, seq, body FROM records ORDER BY seq").fetchall()
        for kind, key, seq, body in rows:
            out.setdefault(kind, {})[key] = json.loads(body)
            self._seq = max(self._seq, seq)
        return out

    async def write(self, changes: Iterable[Change]) -> None:
        """Apply the changes atomically (off the event loop: a disk may be slow)."""
        batch = list(changes)
        if batch:
            await asyncio.to_thread(self._write, batch)

    def _write(self, changes: list[Change]) -> None:
        db = self._connect()
        with _transaction(db):
            for kind, key, body in changes:
                if body is None:
                    db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
                    continue
                self._seq += 1
                # An update keeps the record's first sequence number, hence its place in lists.
                db.execute(
                    "INSERT INTO records (kind, key, seq, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
                    (kind, key, self._seq, json.dumps(body, separators=(",", ":"))),
                )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
