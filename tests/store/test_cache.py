"""The response caches: memory and Redis pass the same tests, with a clock the test controls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from fogbank.store import ResponseCache
from fogbank.store._cache_memory import MemoryCache
from fogbank.store._cache_redis import RedisCache

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


CacheFactory = Callable[[Clock], Any]
"""Opens a cache (an async context manager yielding a `ResponseCache`) on the running loop."""


@asynccontextmanager
async def memory_cache(clock: Clock) -> AsyncIterator[ResponseCache]:
    yield MemoryCache(clock=clock)


@asynccontextmanager
async def redis_cache(clock: Clock) -> AsyncIterator[ResponseCache]:
    # A prefix of its own per test, so runs sharing one Redis never see each other's keys.
    client = Redis.from_url(REDIS_URL)
    cache = RedisCache(client, prefix=f"fogbank-test-{uuid.uuid4().hex}:", clock=clock)
    try:
        yield cache
    finally:
        await cache.flush("")
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def open_cache(request: pytest.FixtureRequest) -> CacheFactory:
    return memory_cache if request.param == "memory" else redis_cache


def run(
    open_cache: CacheFactory,
    scenario: Callable[[ResponseCache, Clock], Coroutine[Any, Any, None]],
) -> None:
    async def main() -> None:
        clock = Clock()
        async with open_cache(clock) as cache:
            await scenario(cache, clock)

    asyncio.run(main())


def test_put_then_get_until_the_ttl_ends(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        assert await cache.get("a") is None
        await cache.put("a", b"\x00first\xff", 10)
        assert await cache.get("a") == b"\x00first\xff"
        clock.advance(9.999)
        assert await cache.get("a") == b"\x00first\xff"
        clock.advance(0.001)
        assert await cache.get("a") is None

    run(open_cache, scenario)


def test_put_replaces_the_value_and_restarts_the_ttl(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        await cache.put("k", b"one", 5)
        clock.advance(4)
        await cache.put("k", b"two", 5)
        clock.advance(4)
        assert await cache.get("k") == b"two"
        clock.advance(1)
        assert await cache.get("k") is None

    run(open_cache, scenario)


def test_a_ttl_of_zero_stores_nothing_and_removes_the_old_value(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        await cache.put("k", b"old", 60)
        await cache.put("k", b"new", 0)
        assert await cache.get("k") is None
        await cache.put("other", b"x", -1)
        assert await cache.get("other") is None

    run(open_cache, scenario)


def test_empty_values_are_values(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        await cache.put("empty", b"", 60)
        assert await cache.get("empty") == b""

    run(open_cache, scenario)


def test_flush_drops_one_prefix_and_counts_what_it_dropped(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        await cache.put("stage:api1:prod:GET /a", b"1", 60)
        await cache.put("stage:api1:prod:GET /b", b"2", 60)
        await cache.put("stage:api1:prod2:GET /a", b"3", 60)
        await cache.put("stage:api2:prod:GET /a", b"4", 60)
        assert await cache.flush("stage:api1:prod:") == 2
        assert await cache.get("stage:api1:prod:GET /a") is None
        assert await cache.get("stage:api1:prod:GET /b") is None
        assert await cache.get("stage:api1:prod2:GET /a") == b"3"
        assert await cache.get("stage:api2:prod:GET /a") == b"4"
        assert await cache.flush("stage:api1:prod:") == 0

    run(open_cache, scenario)


def test_flush_treats_glob_characters_literally(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        await cache.put("p*[x]?:1", b"1", 60)
        await cache.put("p-other:1", b"2", 60)
        assert await cache.flush("p*[x]?:") == 1
        assert await cache.get("p-other:1") == b"2"

    run(open_cache, scenario)


def test_concurrent_writers_leave_one_whole_value(open_cache: CacheFactory) -> None:
    async def scenario(cache: ResponseCache, clock: Clock) -> None:
        values = [bytes([i]) * 1000 for i in range(20)]
        await asyncio.gather(*(cache.put("race", v, 60) for v in values))
        assert await cache.get("race") in values

    run(open_cache, scenario)


def test_memory_cache_evicts_least_recently_used_past_its_cap() -> None:
    async def scenario() -> None:
        cache = MemoryCache(clock=Clock(), max_bytes=30)
        await cache.put("a", b"x" * 9, 60)  # 10 bytes with its key
        await cache.put("b", b"x" * 9, 60)
        await cache.put("c", b"x" * 9, 60)
        assert await cache.get("a") is not None  # now the most recently used
        await cache.put("d", b"x" * 9, 60)
        assert await cache.get("b") is None
        assert [await cache.get(k) is not None for k in "acd"] == [True, True, True]
        assert cache.size_bytes == 30
        await cache.put("huge", b"x" * 100, 60)  # larger than the whole cache: not kept
        assert await cache.get("huge") is None
        assert len(cache) == 3

    asyncio.run(scenario())


def test_memory_cache_flush_does_not_count_expired_entries() -> None:
    async def scenario() -> None:
        clock = Clock()
        cache = MemoryCache(clock=clock)
        await cache.put("p:old", b"1", 1)
        await cache.put("p:new", b"2", 100)
        clock.advance(2)
        assert await cache.flush("p:") == 1
        assert len(cache) == 0
        assert cache.size_bytes == 0

    asyncio.run(scenario())


def test_redis_cache_refuses_a_decoding_client() -> None:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisCache(client)


def test_redis_entries_carry_a_real_ttl() -> None:
    """Redis itself forgets an entry at its TTL: nothing is left behind for a sweeper."""

    async def scenario() -> None:
        client = Redis.from_url(REDIS_URL)
        prefix = f"fogbank-test-{uuid.uuid4().hex}:"
        cache = RedisCache(client, prefix=prefix)
        try:
            await cache.put("k", b"v", 30)
            ttl_ms = await client.pttl(prefix + "k")
            assert 0 < ttl_ms <= 30_000
            await cache.put("short", b"v", 0.0004)  # rounds up to Redis's 1 ms minimum
            assert await client.pttl(prefix + "short") <= 1  # -2 once Redis has dropped it
        finally:
            await cache.flush("")
            await client.aclose()

    asyncio.run(scenario())
