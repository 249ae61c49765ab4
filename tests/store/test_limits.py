"""Rate limits, quotas and usage: the memory and Redis stores pass the same tests.

Time is a clock the test moves (no sleeps). Its steps are binary fractions of a second, so the
bucket arithmetic is exact and the counts below are exact too. The Redis tests use the server
at 127.0.0.1:6379 (CI starts one), each under its own key prefix, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from fogbank._errors import ConfigError
from fogbank.config import NodeConfig
from fogbank.gateway._usage import quota_window
from fogbank.model import Quota, QuotaPeriod
from fogbank.store import (
    MemoryLimiter,
    MemoryQuotas,
    QuotaCounter,
    RateLimiter,
    RedisLimiter,
    RedisQuotas,
    check_stores,
    close_stores,
    open_stores,
)

from ..functions.async_support import FakeClock, run

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_795_000_000.0
"""Wednesday 2026-11-18, 11:06:40 UTC."""


Counters = tuple[RateLimiter, QuotaCounter]
Opener = Callable[[FakeClock], contextlib.AbstractAsyncContextManager[Counters]]


@contextlib.asynccontextmanager
async def memory_counters(clock: FakeClock) -> AsyncIterator[Counters]:
    yield MemoryLimiter(clock), MemoryQuotas(clock)


@contextlib.asynccontextmanager
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Opener:
    """Opens a limiter and a quota counter on a clock; Redis ones under a fresh key prefix."""
    if request.param == "memory":
        return memory_counters
    prefix = f"fogbank-test:{uuid.uuid4().hex}:"

    @contextlib.asynccontextmanager
    async def opened(clock: FakeClock) -> AsyncIterator[Counters]:
        async with redis_client(prefix) as client:
            yield RedisLimiter(client, prefix, clock), RedisQuotas(client, prefix, clock)

    return opened


async def admitted(limiter: RateLimiter, key: str, rate: float, burst: int, tries: int) -> int:
    return sum([await limiter.acquire(key, rate, burst) for _ in range(tries)])


def test_a_new_bucket_admits_its_burst_then_the_rate(counters: Opener) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        async with counters(clock) as (limiter, _):
            assert await admitted(limiter, "b", 4.0, 3, 10) == 3
            clock.advance(0.75)  # 3 tokens
            assert await admitted(limiter, "b", 4.0, 3, 10) == 3
            clock.advance(0.125)  # half a token: not enough
            assert await admitted(limiter, "b", 4.0, 3, 10) == 0
            clock.advance(0.125)
            assert await admitted(limiter, "b", 4.0, 3, 10) == 1
            clock.advance(3600.0)  # a long pause refills to the burst, no more
            assert await admitted(limiter, "b", 4.0, 3, 10) == 3

    run(scenario())


def test_rate_times_time_plus_burst_over_a_long_run(counters: Opener) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        async with counters(clock) as (limiter, _):
            total = 0
            for _ in range(400):  # 100 s in quarter seconds, 4 tries each (16 rps offered)
                total += await admitted(limiter, "long", 10.0, 20, 4)
                clock.advance(0.25)
            # 10 rps for 99.75 s of refill plus the burst of 20, capped by what was offered
            assert total == min(400 * 4, int(10.0 * 99.75) + 20)

    run(scenario())


def test_fractional_rates_are_exact(counters: Opener) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        async with counters(clock) as (limiter, _):
            assert await admitted(limiter, "slow", 0.1, 1, 2) == 1
            clock.advance(10.0)  # 0.1 x 10 rounds to 1.0 only just: still one token
            assert await admitted(limiter, "slow", 0.1, 1, 2) == 1

    run(scenario())


def test_buckets_are_independent_and_a_zero_burst_admits_nothing(counters: Opener) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        async with counters(clock) as (limiter, _):
            assert await admitted(limiter, "one", 1.0, 2, 5) == 2
            assert await admitted(limiter, "two", 1.0, 2, 5) == 2
            assert await admitted(limiter, "zero", 100.0, 0, 5) == 0

    run(scenario())


def test_a_clock_that_steps_back_adds_nothing(counters: Opener) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        async with counters(clock) as (limiter, _):
            assert await admitted(limiter, "skew", 1.0, 2, 3) == 2
            clock.advance(-5.0)  # another node's clock, a little behind
            assert await admitted(limiter, "skew", 1.0, 2, 3) == 0
            clock.advance(5.0 + 1.0)  # one second after the last refill
            assert await admitted(limiter, "skew", 1.0, 2, 3) == 1

    run(scenario())


def test_concurrent_acquires_admit_exactly_the_burst(counters: Opener) -> None:
    async def scenario() -> None:
        async with counters(FakeClock(T0)) as (limiter, _):
            results = await asyncio.gather(*(limiter.acquire("hot", 0.0, 50) for _ in range(200)))
            assert sum(results) == 50

    run(scenario())


def test_two_redis_clients_share_one_bucket_exactly() -> None:
    """Two nodes on one Redis: 2 x 150 concurrent requests against a burst of 100."""

    async def scenario() -> None:
        prefix = f"fogbank-test:{uuid.uuid4().hex}:"
        clock = FakeClock(T0)
        async with redis_client(prefix) as first, redis_client(prefix) as second:
            a, b = RedisLimiter(first, prefix, clock), RedisLimiter(second, prefix, clock)
            calls = [node.acquire("shared", 0.0, 100) for node in (a, b) for _ in range(150)]
            results = await asyncio.gather(*calls)
            assert sum(results) == 100

    run(scenario())


def test_quota_counts_down_per_window(counters: Opener) -> None:
    async def scenario() -> None:
        async with counters(FakeClock(T0)) as (_, quotas):
            day = "DAY:2026-11-19"
            outcomes = [await quotas.consume("plan:key", 3, day, 86_400) for _ in range(5)]
            assert outcomes == [(True, 2), (True, 1), (True, 0), (False, 0), (False, 0)]
            assert await quotas.consume("plan:key", 3, "DAY:2026-11-20", 86_400) == (True, 2)
            assert await quotas.consume("plan:other", 3, day, 86_400) == (True, 2)
            assert await quotas.consume("plan:none", 0, day, 86_400) == (False, 0)

    run(scenario())


def test_concurrent_quota_consumers_never_overspend(counters: Opener) -> None:
    async def scenario() -> None:
        async with counters(FakeClock(T0)) as (_, quotas):
            calls = [quotas.consume("k", 30, "w", 60) for _ in range(100)]
            results = await asyncio.gather(*calls)
            assert sum(allowed for allowed, _ in results) == 30
            remaining = sorted(left for allowed, left in results if allowed)
            assert remaining == list(range(30))

    run(scenario())


def test_usage_is_kept_per_plan_key_and_day(counters: Opener) -> None:
    async def scenario() -> None:
        async with counters(FakeClock(T0)) as (_, quotas):
            d1, d2, d3 = (datetime.date(2026, 11, d) for d in (18, 19, 20))
            for day, key, times in ((d1, "k1", 2), (d2, "k1", 3), (d2, "k2", 1), (d3, "k2", 4)):
                for _ in range(times):
                    await quotas.record_usage("plan", key, day)
            await quotas.record_usage("other-plan", "k1", d2)
            assert await quotas.usage("plan", d1, d3) == {
                "k1": {d1: 2, d2: 3},
                "k2": {d2: 1, d3: 4},
            }
            assert await quotas.usage("plan", d2, d2) == {"k1": {d2: 3}, "k2": {d2: 1}}
            assert await quotas.usage("plan", d3, d1) == {}
            assert await quotas.usage("nobody", d1, d3) == {}

    run(scenario())


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(f"{text}+00:00").timestamp()


@pytest.mark.parametrize(
    ("period", "offset", "now", "window", "ends"),
    [
        (QuotaPeriod.DAY, 0, "2026-11-19T08:26:40", "DAY:2026-11-19", "2026-11-20T00:00:00"),
        (QuotaPeriod.DAY, 0, "2026-11-19T23:59:59", "DAY:2026-11-19", "2026-11-20T00:00:00"),
        (QuotaPeriod.WEEK, 0, "2026-11-19T08:00:00", "WEEK:2026-11-16", "2026-11-23T00:00:00"),
        (QuotaPeriod.WEEK, 0, "2026-11-16T00:00:00", "WEEK:2026-11-16", "2026-11-23T00:00:00"),
        (QuotaPeriod.WEEK, 3, "2026-11-19T00:00:00", "WEEK:2026-11-19", "2026-11-26T00:00:00"),
        (QuotaPeriod.WEEK, 3, "2026-11-18T23:59:59", "WEEK:2026-11-12", "2026-11-19T00:00:00"),
        (QuotaPeriod.MONTH, 0, "2026-11-19T08:00:00", "MONTH:2026-11-01", "2026-12-01T00:00:00"),
        (QuotaPeriod.MONTH, 4, "2026-11-19T08:00:00", "MONTH:2026-11-05", "2026-12-05T00:00:00"),
        (QuotaPeriod.MONTH, 4, "2026-11-03T08:00:00", "MONTH:2026-10-05", "2026-11-05T00:00:00"),
        (QuotaPeriod.MONTH, 4, "2026-01-02T00:00:00", "MONTH:2025-12-05", "2026-01-05T00:00:00"),
        (QuotaPeriod.MONTH, 0, "2026-12-31T12:00:00", "MONTH:2026-12-01", "2027-01-01T00:00:00"),
    ],
)
def test_quota_windows_and_offsets_in_utc(
    period: QuotaPeriod, offset: int, now: str, window: str, ends: str
) -> None:
    found, ttl_s = quota_window(Quota(limit=10, period=period, offset=offset), at(now))
    assert found == window
    grace = ttl_s - (at(ends) - at(now))
    assert 0 < grace <= 3601  # the counter outlives its window by the grace period only


def test_memory_limiter_forgets_buckets_that_refilled() -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        limiter = MemoryLimiter(clock)
        for n in range(4095):
            await limiter.acquire(f"k{n}", 1.0, 1)
        assert len(limiter) == 4095
        clock.advance(1.0)  # every bucket is full again, as good as new
        await limiter.acquire("busy", 0.0, 1)  # the 4096th call sweeps
        assert len(limiter) == 1

    run(scenario())


def test_redis_keys_expire_once_they_would_be_full_again() -> None:
    async def scenario() -> None:
        prefix = f"fogbank-test:{uuid.uuid4().hex}:"
        async with redis_client(prefix) as client:
            limiter, quotas = RedisLimiter(client, prefix), RedisQuotas(client, prefix)
            await limiter.acquire("fast", 100.0, 10)
            await quotas.consume("q", 5, "DAY:2026-11-19", 7200)
            await quotas.record_usage("p", "k", datetime.date(2026, 11, 19))
            assert 0 < await client.pttl(f"{prefix}bucket:fast") <= 60_000
            assert 7000 < await client.ttl(f"{prefix}quota:q:DAY:2026-11-19") <= 7200
            assert await client.ttl(f"{prefix}usage:p:2026-11-19") > 90 * 86_400

    run(scenario())


def test_open_stores_picks_memory_or_redis() -> None:
    async def scenario() -> None:
        memory = open_stores(NodeConfig())
        assert isinstance(memory.limiter, MemoryLimiter)
        assert isinstance(memory.quotas, MemoryQuotas)
        await check_stores(memory)
        await close_stores(memory)
        clustered = open_stores(NodeConfig(redis_url=REDIS_URL, redis_prefix="fogbank-test:"))
        assert isinstance(clustered.limiter, RedisLimiter)
        assert isinstance(clustered.quotas, RedisQuotas)
        await check_stores(clustered, REDIS_URL)
        await close_stores(clustered)

    run(scenario())


def test_an_unreachable_or_invalid_redis_is_one_clear_line() -> None:
    async def scenario() -> None:
        stores = open_stores(NodeConfig(redis_url="redis://127.0.0.1:1/0"))
        with pytest.raises(ConfigError, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
            await check_stores(stores, "redis://127.0.0.1:1/0")
        await close_stores(stores)

    run(scenario())
    with pytest.raises(ConfigError, match="invalid --redis-url"):
        open_stores(NodeConfig(redis_url="mysql://nope"))


def test_without_the_redis_library_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"install fogbank\[redis\]"):
        open_stores(NodeConfig(redis_url=REDIS_URL))
