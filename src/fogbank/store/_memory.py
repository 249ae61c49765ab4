"""The embedded store's counters: token buckets, quota windows and usage, in this process.

Every operation runs to completion without awaiting, so on one event loop each is atomic: two
concurrent requests can never both read a bucket's last token.
"""

from __future__ import annotations

import datetime
import time

from fogbank.store._protocols import Clock

# Token counts are floats (rate x elapsed time); a sum such as 0.1 x 10 s may land a hair under
# 1.0, which must still buy a request.
EPSILON = 1e-9

# Idle entries are swept every this many operations, so memory follows the active keys only.
SWEEP_EVERY = 4096


def refill(tokens: float, last: float, now: float, rate: float, burst: int) -> float:
    """Tokens in a bucket at `now`: what it had at `last`, plus `rate` a second, capped at `burst`.

    A clock that steps back (another node's, a test's) adds nothing rather than taking away.
    """
    return min(float(burst), tokens + max(0.0, now - last) * rate)


class MemoryLimiter:
    """Token buckets keyed by name: `rate` tokens a second up to `burst`; a new bucket is full."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, float, int]] = {}
        """key -> (tokens, time of that count, rate, burst)."""
        self._ops = 0

    async def acquire(self, key: str, rate: float, burst: int) -> bool:
        now = self._clock()
        state = self._buckets.get(key)
        tokens = float(burst) if state is None else refill(state[0], state[1], now, rate, burst)
        admitted = tokens >= 1.0 - EPSILON
        if admitted:
            tokens -= 1.0
        last = now if state is None else max(now, state[1])
        self._buckets[key] = (tokens, last, rate, burst)
        self._ops += 1
        if self._ops % SWEEP_EVERY == 0:
            self._sweep(now)
        return admitted

    def _sweep(self, now: float) -> None:
        # A bucket that has refilled to its burst is the same as no bucket at all.
        full = [
            key
            for key, (tokens, last, rate, burst) in self._buckets.items()
            if refill(tokens, last, now, rate, burst) >= burst
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        """Buckets held (for tests of the sweep)."""
        return len(self._buckets)


class MemoryQuotas:
    """Quota counts per key and window, and usage per plan, key and day."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}
        """(key, window) -> (requests counted, when the entry may be forgotten)."""
        self._usage: dict[str, dict[str, dict[datetime.date, int]]] = {}
        self._ops = 0

    async def consume(self, key: str, limit: int, window: str, ttl_s: int) -> tuple[bool, int]:
        now = self._clock()
        entry = self._counts.get((key, window))
        used = 0 if entry is None or entry[1] <= now else entry[0]
        self._ops += 1
        if self._ops % SWEEP_EVERY == 0:
            self._sweep(now)
        if used >= limit:
            return False, 0
        expires = now + ttl_s if entry is None or used == 0 else entry[1]
        self._counts[key, window] = (used + 1, expires)
        return True, limit - used - 1

    def _sweep(self, now: float) -> None:
        stale = [k for k, (_, expires) in self._counts.items() if expires <= now]
        for k in stale:
            del self._counts[k]

    async def record_usage(self, plan_id: str, key_id: str, day: datetime.date) -> None:
        days = self._usage.setdefault(plan_id, {}).setdefault(key_id, {})
        days[day] = days.get(day, 0) + 1

    async def usage(
        self, plan_id: str, start: datetime.date, end: datetime.date
    ) -> dict[str, dict[datetime.date, int]]:
        found: dict[str, dict[datetime.date, int]] = {}
        for key_id, days in self._usage.get(plan_id, {}).items():
            within = {day: n for day, n in days.items() if start <= day <= end}
            if within:
                found[key_id] = dict(sorted(within.items()))
        return found
