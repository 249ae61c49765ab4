"""The async dispatcher task: timed retries, its concurrency bound, and restarts.

These run the real dispatcher task, with the real clock only where a delay must pass (0.05 s), and
wait for outcomes with bounded waits, never asserting on elapsed time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fogbank.functions._async import AsyncInvoker
from fogbank.functions._memory import InMemoryContext
from fogbank.model import EventInvokeConfig
from fogbank.store import SqliteEventQueue
from tests.functions.async_support import (
    CONFIG,
    SINK,
    START,
    Harness,
    event_request,
    run,
    until,
)


def test_the_dispatcher_runs_submissions_and_timed_retries() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(on_success=SINK))
        h.worker([ValueError("once"), "fine"])
        ai = AsyncInvoker(h.invoker, h.queue, lambda: h.app, CONFIG, clock=time.time)
        async with ai:
            await ai.submit(event_request({}))
            await until(h, lambda: bool(h.records))
        assert len(h.calls) == 2
        assert h.records[0]["requestContext"]["approximateInvokeCount"] == 2

    run(scenario())


def test_the_dispatcher_runs_at_most_its_concurrency() -> None:
    async def scenario() -> None:
        h = Harness()
        gate = asyncio.Event()
        running: list[str] = []

        async def handler(event: Any, ctx: InMemoryContext) -> None:
            running.append(ctx.aws_request_id)
            h.progress.set()
            await gate.wait()

        h.invoker.register("worker", handler)
        ai = AsyncInvoker(h.invoker, h.queue, lambda: h.app, CONFIG, concurrency=2, clock=h.clock)
        async with ai:
            for n in range(5):
                await ai.submit(event_request({}, rid=f"r{n}"))
            await until(h, lambda: len(running) == 2)
            await asyncio.sleep(0.05)  # room for a (wrong) third launch
            assert running == ["r0", "r1"]
            gate.set()
            await until(h, lambda: len(running) == 5)
        assert await h.queue.pending_count() == 0

    run(scenario())


def test_an_event_interrupted_by_a_stop_runs_once_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"

    async def scenario() -> None:
        first = Harness(queue=SqliteEventQueue(path))
        entered = asyncio.Event()

        async def hang(event: Any, ctx: InMemoryContext) -> None:
            entered.set()
            await asyncio.Event().wait()

        first.invoker.register("worker", hang)
        ai = first.async_invoker()
        await ai.start()
        await ai.submit(event_request({"n": 1}))
        await entered.wait()
        await ai.stop(grace_s=0)
        await first.queue.close()

        second = Harness(EventInvokeConfig(on_success=SINK), queue=SqliteEventQueue(path))
        second.worker(["again"])
        async with second.async_invoker():
            await until(second, lambda: bool(second.records))
        assert len(second.calls) == 1
        assert second.records[0]["requestPayload"] == {"n": 1}
        assert await second.queue.pending_count() == 0
        await second.queue.close()

    run(scenario())


def test_an_event_claimed_by_a_crashed_node_runs_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"

    async def scenario() -> None:
        crashed = Harness(queue=SqliteEventQueue(path))
        await crashed.async_invoker().submit(event_request({"n": 2}))
        # What a dispatcher leaves behind when the process dies mid-invocation: a live lease.
        assert await crashed.queue.claim("req-1", START, START + 900)
        await crashed.queue.close()

        second = Harness(queue=SqliteEventQueue(path))
        second.worker(["done"])
        ai = second.async_invoker()
        assert await ai.dispatch_due() == 0  # still leased: only start() takes the queue over
        await ai.start()
        await until(second, lambda: len(second.calls) == 1)
        await ai.stop()
        assert await ai.dispatch_due() == 0
        assert len(second.calls) == 1
        assert await second.queue.pending_count() == 0
        await second.queue.close()

    run(scenario())
