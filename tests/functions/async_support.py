"""Shared pieces of the async-invocation tests: a fake clock, a small app, a harness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogbank.config import FunctionsConfig
from fogbank.functions._async import AsyncInvoker
from fogbank.functions._memory import InMemoryContext, InMemoryInvoker
from fogbank.functions._types import (
    ChunkSink,
    Invoker,
    InvokeRequest,
    InvokeResult,
    TooManyRequests,
)
from fogbank.model import App, Destination, EventInvokeConfig, Function, FunctionConfig
from fogbank.store import EventQueue, MemoryEventQueue

START = 1_700_000_000.25
STAMP = "2023-11-14T22:13:20.250Z"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
CONFIG = FunctionsConfig(async_retry_delays_s=(0.05, 0.1), async_throttle_delay_s=0.05)
SINK = Destination(arn=ARN + "sink")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(name: str, version: str = "$LATEST") -> FunctionConfig:
    return FunctionConfig(name, "python3.12", "app.handler", Path("/code") / name, version=version)


def build_app(invoke: EventInvokeConfig, **worker: Any) -> App:
    return App.build(
        [Function(config("worker"), event_invoke=invoke, **worker), Function(config("sink"))]
    )


@dataclass
class Harness:
    """An `AsyncInvoker` over an in-memory invoker, with a `sink` function collecting records."""

    invoke: EventInvokeConfig = field(default_factory=EventInvokeConfig)
    clock: FakeClock = field(default_factory=FakeClock)
    queue: EventQueue = field(default_factory=MemoryEventQueue)
    records: list[dict[str, Any]] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    """The fake time of every call of `worker`."""

    def __post_init__(self) -> None:
        self.app = build_app(self.invoke)
        self.progress = asyncio.Event()
        """Set whenever a handler runs, so that tests of the dispatcher task can wait for it."""
        self.invoker = InMemoryInvoker({"sink": self._sink})

    def _sink(self, record: dict[str, Any], _ctx: InMemoryContext) -> None:
        self.records.append(record)
        self.progress.set()

    def worker(self, outcomes: Iterable[Exception | object]) -> None:
        """`worker` raises or returns each outcome in turn."""
        pending = list(outcomes)

        def handler(_event: Any, _ctx: InMemoryContext) -> object:
            self.calls.append(self.clock())
            self.progress.set()
            outcome = pending.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        self.invoker.register("worker", handler)

    def async_invoker(self, invoker: Invoker | None = None) -> AsyncInvoker:
        return AsyncInvoker(
            invoker or self.invoker, self.queue, lambda: self.app, CONFIG, clock=self.clock
        )


def event_request(
    payload: object, qualifier: str | None = None, rid: str = "req-1"
) -> InvokeRequest:
    arn = ARN + "worker" + (f":{qualifier}" if qualifier else "")
    return InvokeRequest("worker", config("worker"), json.dumps(payload).encode(), rid, arn)


async def drain(async_invoker: AsyncInvoker) -> int:
    """Dispatch until nothing is due now (destination records are due as soon as they exist)."""
    total = 0
    while ran := await async_invoker.dispatch_due():
        total += ran
    return total


class Throttling:
    """Rejects the first `times` invocations of `worker`, as AWS does when concurrency runs out."""

    def __init__(self, inner: Invoker, times: int) -> None:
        self.inner = inner
        self.left = times

    async def invoke(self, request: InvokeRequest, sink: ChunkSink | None = None) -> InvokeResult:
        if self.left and request.function_name == "worker":
            self.left -= 1
            raise TooManyRequests("Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded")
        return await self.inner.invoke(request, sink)


async def until(h: Harness, predicate: Callable[[], bool]) -> None:
    """Wait for the dispatcher task until `predicate` holds (bounded: a bug fails, never hangs)."""
    async with asyncio.timeout(10):
        while not predicate():
            await h.progress.wait()
            h.progress.clear()
