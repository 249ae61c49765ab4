"""The cluster response cache: entries in Redis, shared by every node pointed at it."""

from __future__ import annotations

import math
import struct
import time
from typing import TYPE_CHECKING

from fogbank.store._protocols import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Each value starts with its expiry (epoch seconds, a big-endian double).
_EXPIRY = struct.Struct(">d")
_SCAN_BATCH = 500
_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})


class RedisCache:
    """A `ResponseCache` in Redis (the cluster store): what one node stores, every node reads.

    `SET ... PX` makes Redis reclaim an entry when its TTL ends. The expiry is also written in
    front of the value and checked against the injected clock on every read, so a clock the
    caller controls governs expiry here exactly as in `MemoryCache` (the same tests run on
    both). Keys live under `prefix`, so several fogbank clusters (or test runs) can share one
    Redis. The client must return bytes (`decode_responses` off, the default).
    """

    def __init__(self, client: Redis, prefix: str = "fogbank:", clock: Clock = time.time) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisCache needs a client with decode_responses=False")
        self._client = client
        self._prefix = prefix
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        raw: bytes | None = await self._client.get(self._prefix + key)
        if raw is None or len(raw) < _EXPIRY.size:
            return None
        (expires,) = _EXPIRY.unpack_from(raw)
        if self._clock() >= expires:
            return None
        return raw[_EXPIRY.size :]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; a TTL of 0 or less removes the key instead."""
        name = self._prefix + key
        if ttl_s <= 0:
            await self._client.unlink(name)
            return
        expires = self._clock() + ttl_s
        await self._client.set(
            name, _EXPIRY.pack(expires) + value, px=max(1, math.ceil(ttl_s * 1000))
        )

    async def flush(self, prefix: str) -> int:
        """Drop every entry under `prefix` with SCAN + UNLINK, never blocking Redis with KEYS."""
        pattern = (self._prefix + prefix).translate(_GLOB_SPECIAL) + "*"
        dropped = 0
        batch: list[bytes] = []
        async for name in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                dropped += await self._client.unlink(*batch)
                batch.clear()
        if batch:
            dropped += await self._client.unlink(*batch)
        return dropped
