"""Warm-first scaling: a short invocation may wait for a busy environment instead of starting one.

Lambda gives every concurrent invocation an environment of its own and starts one (a cold start)
whenever none is idle; so does fogbank unless `fogbank up --warm-first` asks for this policy. On
one machine the environments are processes sharing a few cores, and on some machines (nested VMs)
rotating the cores among dozens of them costs more than short invocations themselves: every
switch to another process refills the caches and the TLB from that process's memory
(`bench/switch_tax.py` measures it; docs/functions.md has the figures).

Under the policy, once `parallel` environments of a function are busy, a new invocation waits
for one of them when the wait it can expect (the invocations queued ahead of it, times the
handler's recent duration, spread over the busy environments) is shorter than the function's
recent cold starts. It waits at most the longer of `wait_s` and a recent cold start, more only
while an environment is starting (which goes to the waiters first); then it starts one, as Lambda
would have at once. A function whose invocations are long, or not measured yet, scales out at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from dataclasses import dataclass, field

from fogbank.functions._types import ExecutionEnvironment

_WEIGHT = 0.2
"""Weight of the newest sample in the moving averages (about the last ten invocations count)."""


def default_parallel() -> int:
    """Twice the CPUs this process may run on, and at least four."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        cpus = os.cpu_count() or 1
    return max(4, 2 * cpus)


def _average(old: float | None, sample: float) -> float:
    return sample if old is None else old + _WEIGHT * (sample - old)


@dataclass(slots=True)
class Pool:
    """The environments of one function version (and tenant), and what their use has shown."""

    idle: list[ExecutionEnvironment] = field(default_factory=list)
    """Initialised environments, the most recently used last (reused first, as Lambda does)."""
    busy: int = 0
    """Invocations running in this pool's environments right now."""
    starting: int = 0
    """Environments being started for invocations (each will run one when it is ready)."""
    waiters: collections.deque[asyncio.Future[ExecutionEnvironment | None]] = field(
        default_factory=collections.deque
    )
    """Invocations waiting for a busy environment, oldest first."""
    duration_ms: float | None = None
    """Moving average of the handler's duration (what REPORT calls Duration)."""
    cold_ms: float | None = None
    """Moving average of a new environment's start (fork and init), as the front waited for it."""

    def observe(self, duration_ms: float) -> None:
        self.duration_ms = _average(self.duration_ms, duration_ms)

    def observe_cold(self, ms: float) -> None:
        self.cold_ms = _average(self.cold_ms, ms)


class WarmFirst:
    """Decides when an invocation waits for a warm environment, and hands environments over."""

    def __init__(self, parallel: int, wait_s: float) -> None:
        """`parallel`: busy environments a function may have before invocations wait;
        `wait_s`: how long an invocation may wait at least (as long as a recent cold start
        when that is longer); 0 turns waiting off, which is Lambda's scaling."""
        self.parallel = parallel
        self.wait_s = wait_s
        self.enabled = wait_s > 0
        """Off, pools need no moving average of durations."""

    def should_wait(self, pool: Pool) -> bool:
        active = pool.busy + pool.starting
        if not self.enabled or active < self.parallel:
            return False
        if pool.duration_ms is None or pool.cold_ms is None:
            return False
        expected_ms = (len(pool.waiters) + 1) * pool.duration_ms / active
        return expected_ms < pool.cold_ms

    async def wait(self, pool: Pool) -> ExecutionEnvironment | None:
        """The environment a finishing invocation hands over, or None when an environment was
        lost instead of coming back, or after the longer of `wait_s` and the pool's recent cold
        starts with none starting: the caller then starts one."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[ExecutionEnvironment | None] = loop.create_future()
        pool.waiters.append(waiter)
        limit_s = max(self.wait_s, (pool.cold_ms or 0.0) / 1000.0)
        timer: asyncio.TimerHandle | None = None

        def expire() -> None:
            nonlocal timer
            if waiter.done():
                return
            if pool.starting:
                # Environments are on their way and go to the waiters first: starting one
                # more would only slow them down.
                timer = loop.call_later(limit_s, expire)
                return
            _discard(pool, waiter)
            waiter.set_result(None)

        timer = loop.call_later(limit_s, expire)
        try:
            return await waiter
        except asyncio.CancelledError:
            # The caller went away while waiting. An environment handed over meanwhile goes on
            # to the next waiter, or back to the idle list.
            if waiter.done() and not waiter.cancelled() and (env := waiter.result()) is not None:
                if not self.hand_over(pool, env):
                    pool.busy -= 1
                    pool.idle.append(env)
            else:
                _discard(pool, waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    @staticmethod
    def hand_over(pool: Pool, env: ExecutionEnvironment) -> bool:
        """Give a released environment to the oldest waiter, if any is still waiting."""
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(env)
                return True
        return False

    @staticmethod
    def release_one(pool: Pool) -> None:
        """An environment left the pool for good: the oldest waiter stops waiting for it."""
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _discard(pool: Pool, waiter: asyncio.Future[ExecutionEnvironment | None]) -> None:
    with contextlib.suppress(ValueError):
        pool.waiters.remove(waiter)
