"""What the gateway needs from a store: counters, quotas, a response cache, usage records.

Two families implement them, chosen at start-up: embedded (memory, one node) and cluster (Redis,
shared by every node pointed at it). Every operation is atomic on its own: no read-then-write
race, across nodes too.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Clock = Callable[[], float]
"""Epoch seconds; injectable so that limiter tests are deterministic."""


class RateLimiter(Protocol):
    """Token buckets keyed by a string (`plan:key:/path/GET`, `stage:api:stage`, `account`)."""

    async def acquire(self, key: str, rate: float, burst: int) -> bool:
        """Take one token; False when the bucket is empty (the request is throttled)."""
        ...


class QuotaCounter(Protocol):
    """Per-key request counts over a quota window, and per-day usage for `GetUsage`."""

    async def consume(self, key: str, limit: int, window: str, ttl_s: int) -> tuple[bool, int]:
        """Count one request in `window` (e.g. `2026-11-28`); (allowed, remaining)."""
        ...

    async def record_usage(self, plan_id: str, key_id: str, day: datetime.date) -> None: ...

    async def usage(
        self, plan_id: str, start: datetime.date, end: datetime.date
    ) -> dict[str, dict[datetime.date, int]]:
        """key id -> day -> requests, for days in [start, end]."""
        ...


class ResponseCache(Protocol):
    """Stage response caches and authorizer result caches: bytes by key, with a TTL."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def flush(self, prefix: str) -> int:
        """Drop every entry whose key starts with `prefix`; how many were dropped."""
        ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The stores one node uses."""

    limiter: RateLimiter
    quotas: QuotaCounter
    cache: ResponseCache
