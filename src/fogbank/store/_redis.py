"""The cluster store's counters in Redis, shared by every node pointed at the same server.

Each operation is one Lua script (or one pipelined write that needs no read), so Redis runs it
atomically: nodes never race on a read-then-write. The caller's clock is passed to the scripts
as an argument, never Redis's `TIME`, so tests control time the same way as for the memory
store, and the arithmetic is the memory store's, step for step, in IEEE doubles.

This module needs no `redis` import at run time: it is handed a client (see `_open`).
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from fogbank.store._protocols import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS[1] = bucket; ARGV = rate, burst, now. State: a hash of `tokens` and `ts` (when that count
# was true). Numbers are written with 17 significant digits so they survive the round trip.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
else
  if now > ts then
    tokens = tokens + (now - ts) * rate
    ts = now
  end
  if tokens > burst then tokens = burst end
end
local admitted = 0
if tokens >= 1 - 1e-9 then
  tokens = tokens - 1
  admitted = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', ts))
if rate > 0 then
  -- Once it would have refilled, the bucket equals a new one: let Redis forget it.
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(60, 2 * burst / rate) * 1000))
end
return admitted
"""

# KEYS[1] = counter of one key in one window; ARGV = limit, ttl seconds.
_CONSUME = """
local limit = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= limit then
  return {0, 0}
end
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {1, limit - used}
"""

# Usage per day is kept a little longer than GetUsage can look back (90 days).
USAGE_TTL_S = 100 * 86_400


class RedisLimiter:
    """Token buckets in Redis: `rate` tokens a second up to `burst`; a new bucket is full."""

    def __init__(self, client: Redis, prefix: str = "fogbank:", clock: Clock = time.time) -> None:
        self.client = client
        self._prefix = f"{prefix}bucket:"
        self._clock = clock
        self._script = client.register_script(_ACQUIRE)

    async def acquire(self, key: str, rate: float, burst: int) -> bool:
        # repr() of a float is its shortest exact spelling; Lua's tonumber reads it back exactly.
        args = [repr(float(rate)), str(int(burst)), repr(float(self._clock()))]
        admitted = await self._script(keys=[self._prefix + key], args=args)
        return bool(admitted)


class RedisQuotas:
    """Quota counts per key and window, and usage per plan, key and day, in Redis."""

    def __init__(self, client: Redis, prefix: str = "fogbank:", clock: Clock = time.time) -> None:
        self.client = client
        self._quota = f"{prefix}quota:"
        self._usage = f"{prefix}usage:"
        self._clock = clock
        self._script = client.register_script(_CONSUME)

    async def consume(self, key: str, limit: int, window: str, ttl_s: int) -> tuple[bool, int]:
        keys = [f"{self._quota}{key}:{window}"]
        allowed, remaining = await self._script(keys=keys, args=[int(limit), max(1, int(ttl_s))])
        return bool(allowed), int(remaining)

    def _day_key(self, plan_id: str, day: datetime.date) -> str:
        return f"{self._usage}{plan_id}:{day.isoformat()}"

    async def record_usage(self, plan_id: str, key_id: str, day: datetime.date) -> None:
        # Two writes and no read: a pipeline is one round trip and needs no script.
        name = self._day_key(plan_id, day)
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(name, key_id, 1)
        pipe.expire(name, USAGE_TTL_S)
        await pipe.execute()

    async def usage(
        self, plan_id: str, start: datetime.date, end: datetime.date
    ) -> dict[str, dict[datetime.date, int]]:
        days = [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]
        if not days:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self._day_key(plan_id, day))
        found: dict[str, dict[datetime.date, int]] = {}
        rows: list[dict[Any, Any]] = await pipe.execute()
        for day, row in zip(days, rows, strict=True):
            for key_id, count in row.items():
                name = key_id.decode() if isinstance(key_id, bytes) else str(key_id)
                found.setdefault(name, {})[day] = int(count)
        return found
