"""Asynchronous (`Event`) invocations: a durable queue, retries, event age and destinations.

`submit` stores the event and returns (the Invoke API then answers 202). A dispatcher task takes
due events from the queue and runs them through the `Invoker`, a bounded number at a time:

- success: the event is removed and the on-success destination gets a record (`Success`);
- function error: retried after `async_retry_delays_s[n]`, up to `MaximumRetryAttempts`, then
  dropped with a record to the on-failure destination (`RetriesExhausted`);
- throttled (429) or a system error (5xx): tried again after `async_throttle_delay_s`, without
  counting an attempt, for as long as the event is young enough;
- older than `MaximumEventAgeInSeconds`: dropped, on-failure record (`EventAgeExceeded`).

Events left in the queue by a previous run (a crash, a stop with work in flight) run on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from fogbank.config import FunctionsConfig
from fogbank.functions._destinations import Condition, DestinationRouter, RecordOutcome
from fogbank.functions._types import (
    MAX_ASYNC_PAYLOAD,
    InvocationError,
    Invoker,
    InvokeRequest,
    InvokeResult,
    RequestTooLarge,
)
from fogbank.model import LATEST, App, Function, FunctionConfig
from fogbank.store import EventQueue, QueuedEvent

log = logging.getLogger(__name__)

LEASE_S = 960.0
"""How long a claim keeps other dispatchers away: the longest function timeout plus a margin."""
_STUCK_POLL_S = 1.0


def _qualifier(request: InvokeRequest) -> str:
    """The qualifier the caller named (an alias stays an alias, re-resolved at every attempt)."""
    parts = request.invoked_arn.split(":")
    # arn:aws:lambda:region:account:function:name[:qualifier]
    if len(parts) == 8 and parts[7]:
        return parts[7]
    return request.config.version


class AsyncInvoker:
    """Runs `Event` invocations from an `EventQueue`; implements `AsyncSubmitter`.

    Use it as an async context manager (or call `start()` and `stop()`) to run the dispatcher;
    `dispatch_due()` runs what is due once, without the dispatcher (tests, one-shot tools).
    """

    def __init__(
        self,
        invoker: Invoker,
        queue: EventQueue,
        app_provider: Callable[[], App],
        config: FunctionsConfig,
        *,
        concurrency: int = 10,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """`clock` gives epoch seconds: event ages must hold across restarts, so not monotonic."""
        self._invoker = invoker
        self._queue = queue
        self._app_provider = app_provider
        self._config = config
        self._concurrency = max(1, concurrency)
        self._clock = clock
        self._rng = rng
        self._destinations = DestinationRouter(clock)
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    async def submit(self, request: InvokeRequest) -> None:
        """Store the event (committed before this returns) and wake the dispatcher."""
        if len(request.payload) > MAX_ASYNC_PAYLOAD:
            raise RequestTooLarge(
                f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the Invoke operation"
            )
        now = self._clock()
        event = QueuedEvent(
            id=request.request_id,
            function_name=request.function_name,
            qualifier=_qualifier(request),
            payload=request.payload,
            enqueued_at=now,
            next_attempt_at=now,
            invoked_arn=request.invoked_arn,
            client_context=request.client_context,
            tenant_id=request.tenant_id,
        )
        await self._queue.put(event)
        self.wake()

    def wake(self) -> None:
        """Make the dispatcher look at the queue now (after a submit, or a test moving its clock)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the dispatcher; events left by a previous run are due at once."""
        if self._loop_task is not None:
            return
        # The queue belongs to this node: a lease still on it was taken by a run that is gone.
        await self._queue.release_all()
        self._loop_task = asyncio.create_task(self._run(), name="fogbank-async-dispatcher")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking events, give running ones `grace_s` to end, then cancel the rest.

        A cancelled event stays in the queue with its attempt count and runs again on next start.
        """
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = list(self._inflight.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace_s)
            for straggler in late:
                straggler.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def dispatch_due(self) -> int:
        """Start every event due now (within the concurrency bound), wait for them; how many ran."""
        tasks = await self._launch_due(self._clock())
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _run(self) -> None:
        while True:
            # Clear before looking, so that a wake-up arriving while we look is not lost.
            self._wake.clear()
            looked_at = self._clock()
            launched = await self._launch_due(looked_at)
            timeout = None
            if len(self._inflight) < self._concurrency:
                next_at = await self._queue.next_due_at()
                if next_at is not None:
                    timeout = max(0.0, next_at - self._clock())
                    if not launched and next_at <= looked_at:
                        # Due but not runnable: one of ours outlived its lease and is still
                        # running. Its end wakes us; until then, look again now and then.
                        timeout = _STUCK_POLL_S
            # A finishing event sets the wake-up too: it frees a slot and may have queued a record.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _launch_due(self, now: float) -> list[asyncio.Task[None]]:
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return []
        tasks: list[asyncio.Task[None]] = []
        # Ask for more than `free`: events of ours whose lease ran out can come back and are skipped.
        for event in await self._queue.due(now, free + len(self._inflight)):
            if event.id in self._inflight or len(tasks) >= free:
                continue
            if not await self._queue.claim(event.id, now, now + LEASE_S):
                continue  # another dispatcher took it between the two calls
            task = asyncio.create_task(self._attempt(event), name=f"fogbank-async-{event.id}")
            self._inflight[event.id] = task
            task.add_done_callback(functools.partial(self._done, event.id))
            tasks.append(task)
        return tasks

    def _done(self, event_id: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(event_id, None)
        self._wake.set()

    async def _attempt(self, event: QueuedEvent) -> None:
        try:
            await self._attempt_once(event)
        except Exception:
            # The boundary of a background task: nobody awaits it to see the error. Log it with
            # the request id and treat it as a system error (AWS retries those until the age limit).
            log.exception("async event %s for %s failed in fogbank", event.id, event.function_name)
            await self._retry_later(event, event.attempts, self._config.async_throttle_delay_s)

    async def _attempt_once(self, event: QueuedEvent) -> None:
        app = self._app_provider()
        fn = app.find_function(event.function_name)
        cfg = self._resolve(fn, event.qualifier) if fn is not None else None
        if fn is None or cfg is None:
            log.warning(
                "async event %s dropped: function %s:%s no longer exists",
                event.id,
                event.function_name,
                event.qualifier,
            )
            await self._queue.delete(event.id)
            return
        if self._clock() >= self._deadline(event, fn):
            await self._finish(
                event, fn, app, RecordOutcome(Condition.EVENT_AGE_EXCEEDED, event.attempts)
            )
            return
        request = InvokeRequest(
            function_name=fn.name,
            config=cfg,
            payload=event.payload,
            request_id=event.id,
            invoked_arn=event.invoked_arn or app.identity.function_arn(fn.name, event.qualifier),
            client_context=event.client_context,
            tenant_id=event.tenant_id,
        )
        try:
            result = await self._invoker.invoke(request)
        except InvocationError as exc:
            if exc.status == 429 or exc.status >= 500:
                # Not the function's fault and not counted: AWS keeps trying until the age limit.
                await self._retry_later(event, event.attempts, self._config.async_throttle_delay_s)
                return
            log.warning("async event %s dropped: %s %s", event.id, exc.error_type, exc.message)
            await self._queue.delete(event.id)
            return
        await self._settle(event, fn, app, result)

    async def _settle(
        self, event: QueuedEvent, fn: Function, app: App, result: InvokeResult
    ) -> None:
        count = event.attempts + 1
        if result.function_error is None:
            await self._finish(event, fn, app, RecordOutcome(Condition.SUCCESS, count, result))
        elif count > fn.event_invoke.maximum_retry_attempts:
            await self._finish(
                event, fn, app, RecordOutcome(Condition.RETRIES_EXHAUSTED, count, result)
            )
        else:
            delays = self._config.async_retry_delays_s
            delay = delays[min(count, len(delays)) - 1] if delays else 0.0
            await self._retry_later(event, count, delay)

    async def _retry_later(self, event: QueuedEvent, attempts: int, delay: float) -> None:
        next_at = self._clock() + delay
        fn = self._app_provider().find_function(event.function_name)
        if fn is not None:
            # Never wait past the age limit: the event is due (and dropped) right when it expires.
            next_at = min(next_at, self._deadline(event, fn))
        await self._queue.reschedule(event.id, next_at, attempts)

    async def _finish(
        self, event: QueuedEvent, fn: Function, app: App, outcome: RecordOutcome
    ) -> None:
        if outcome.condition is not Condition.SUCCESS:
            log.warning(
                "async event %s for %s dropped: %s after %d attempt(s)",
                event.id,
                fn.name,
                outcome.condition.value,
                outcome.invoke_count,
            )
        follow_up = self._destinations.follow_up(event, fn, app, outcome, self._new_id())
        await self._queue.delete(event.id, follow_up)

    def _deadline(self, event: QueuedEvent, fn: Function) -> float:
        return event.enqueued_at + fn.event_invoke.maximum_event_age_s

    def _resolve(self, fn: Function, qualifier: str) -> FunctionConfig | None:
        if qualifier == LATEST or qualifier.isdigit():
            return fn.config(qualifier)
        alias = fn.aliases.get(qualifier)
        return fn.config(alias.pick_version(self._rng)) if alias is not None else None

    def _new_id(self) -> str:
        return str(uuid.uuid4())
