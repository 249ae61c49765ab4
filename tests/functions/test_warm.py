"""Warm-first scaling: short invocations wait for a busy environment; long ones scale out.

The policy's decisions are tested on `Pool` and `WarmFirst` alone; then real environments show
what a user sees: a burst of short invocations served by few processes, a burst of long ones by a
process each (as on Lambda), and `--eager-scale-out` (warm_wait_s = 0) scaling out every time.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import cast

import pytest

from fogbank.functions._types import ExecutionEnvironment
from fogbank.functions._warm import Pool, WarmFirst, default_parallel

from .conftest import Harness

pytestmark = pytest.mark.anyio

PID = """
import os, time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"pid": os.getpid()}
"""


def _env(name: str) -> ExecutionEnvironment:
    # The policy only passes environments along; any object stands for one.
    return cast(ExecutionEnvironment, name)


A, B, C = _env("a"), _env("b"), _env("c")


def _known(busy: int, duration_ms: float = 0.1, cold_ms: float = 20.0) -> Pool:
    pool = Pool(busy=busy)
    pool.observe(duration_ms)
    pool.observe_cold(cold_ms)
    return pool


# -- the decision -------------------------------------------------------------------------------


def test_waits_only_once_parallel_environments_are_busy() -> None:
    warm = WarmFirst(parallel=4, wait_s=0.05)
    assert not warm.should_wait(_known(busy=3))
    assert warm.should_wait(_known(busy=4))
    starting = _known(busy=2)
    starting.starting = 2
    assert warm.should_wait(starting)


def test_scales_out_while_durations_are_unknown() -> None:
    warm = WarmFirst(parallel=1, wait_s=0.05)
    assert not warm.should_wait(Pool(busy=5))
    no_cold = Pool(busy=5)
    no_cold.observe(0.1)
    assert not warm.should_wait(no_cold)


def test_scales_out_when_the_expected_wait_exceeds_a_cold_start() -> None:
    warm = WarmFirst(parallel=2, wait_s=0.05)
    # 300 ms invocations on 2 busy environments: 150 ms expected, against 20 ms cold starts.
    assert not warm.should_wait(_known(busy=2, duration_ms=300.0, cold_ms=20.0))
    # 1 ms invocations: waiting is quicker until the queue ahead is long.
    queued = _known(busy=2, duration_ms=1.0, cold_ms=20.0)
    assert warm.should_wait(queued)
    loop = asyncio.new_event_loop()
    try:
        queued.waiters.extend(loop.create_future() for _ in range(39))
        assert not warm.should_wait(queued)  # 40 x 1 ms / 2 = 20 ms: not below 20 ms
    finally:
        loop.close()


def test_zero_wait_is_lambdas_scaling() -> None:
    assert not WarmFirst(parallel=1, wait_s=0.0).should_wait(_known(busy=50))


def test_moving_averages_follow_the_newest_samples() -> None:
    pool = Pool()
    pool.observe(10.0)
    assert pool.duration_ms == 10.0
    for _ in range(40):
        pool.observe(1.0)
    assert pool.duration_ms is not None
    assert pool.duration_ms < 1.01


def test_default_parallel_is_at_least_four() -> None:
    assert default_parallel() >= 4


# -- waiting and handing over -------------------------------------------------------------------

Waiter = asyncio.Task[ExecutionEnvironment | None]


async def _waiting(warm: WarmFirst, pool: Pool, count: int) -> list[Waiter]:
    """`count` invocations waiting in `pool`, in order."""
    waiters = [asyncio.ensure_future(warm.wait(pool)) for _ in range(count)]
    await asyncio.sleep(0)
    return waiters


async def test_a_released_environment_goes_to_the_oldest_waiter() -> None:
    warm = WarmFirst(parallel=1, wait_s=5.0)
    pool = _known(busy=1)
    first, second = await _waiting(warm, pool, 2)
    assert len(pool.waiters) == 2
    assert warm.hand_over(pool, A)
    assert await first is A
    assert not second.done()
    assert warm.hand_over(pool, B)
    assert await second is B
    assert not warm.hand_over(pool, C)  # nobody waits: the caller pools it


async def test_a_lost_environment_releases_one_waiter_to_start_another() -> None:
    warm = WarmFirst(parallel=1, wait_s=5.0)
    pool = _known(busy=1)
    (waiter,) = await _waiting(warm, pool, 1)
    warm.release_one(pool)
    assert await waiter is None
    assert not pool.waiters


async def test_a_waiter_gives_up_when_nothing_is_starting() -> None:
    warm = WarmFirst(parallel=1, wait_s=0.01)
    pool = Pool(busy=1)
    assert await warm.wait(pool) is None
    assert not pool.waiters


async def test_a_waiter_keeps_waiting_while_an_environment_starts() -> None:
    warm = WarmFirst(parallel=1, wait_s=0.01)
    pool = Pool(busy=1, starting=1)
    waiter = asyncio.ensure_future(warm.wait(pool))
    await asyncio.sleep(0.05)  # several of its limits
    assert not waiter.done()
    pool.starting = 0
    warm.hand_over(pool, C)
    assert await waiter is C


async def test_a_cancelled_waiter_passes_its_environment_on() -> None:
    warm = WarmFirst(parallel=1, wait_s=5.0)
    pool = _known(busy=2)
    first, second = await _waiting(warm, pool, 2)
    warm.hand_over(pool, A)
    first.cancel()  # cancelled after the hand-over, before it ran again
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second is A
    (third,) = await _waiting(warm, pool, 1)
    warm.hand_over(pool, B)
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
    assert pool.idle == [B]  # nobody left to take it: back to the idle list, no longer busy
    assert pool.busy == 1


# -- real environments --------------------------------------------------------------------------


async def _burst(h: Harness, count: int, sleep_s: float) -> set[int]:
    payload = json.dumps({"sleep": sleep_s}).encode()
    results = await asyncio.gather(*(h.invoke("pids", payload) for _ in range(count)))
    assert all(r.function_error is None for r in results), [r.payload for r in results]
    return {json.loads(r.payload)["pid"] for r in results}


async def _harness(root: Path, **config: object) -> Harness:
    h = Harness(root, **config)
    await h.invoker.start()
    h.function("pids", PID, timeout_s=30)
    await h.invoker.provision(h.app)  # the zygote, as `fogbank up` warms it at start
    # One invocation first: the pool then knows a cold start and a duration.
    await h.invoke("pids")
    return h


async def test_a_burst_of_short_invocations_runs_on_few_environments(code_root: Path) -> None:
    h = await _harness(code_root, warm_parallel=2, warm_wait_s=30.0)
    try:
        pids = await _burst(h, 16, 0.0)
        assert len(pids) == 2
        stats = h.invoker._pools[("pids", "$LATEST", None)]
        assert (stats.busy, stats.starting, len(stats.waiters)) == (0, 0, 0)
        assert len(stats.idle) == 2
    finally:
        await h.invoker.stop()


async def test_a_burst_of_long_invocations_scales_out(code_root: Path) -> None:
    h = await _harness(code_root, warm_parallel=2, warm_wait_s=30.0)
    try:
        # Durations known to be long: about 400 ms on average after this one.
        await h.invoke("pids", json.dumps({"sleep": 2.0}).encode())
        assert len(await _burst(h, 6, 0.5)) == 6
    finally:
        await h.invoker.stop()


async def test_eager_scale_out_starts_an_environment_per_concurrent_invocation(
    code_root: Path,
) -> None:
    h = await _harness(code_root, warm_parallel=1, warm_wait_s=0.0)
    try:
        assert len(await _burst(h, 6, 0.2)) == 6
    finally:
        await h.invoker.stop()
