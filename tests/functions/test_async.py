"""Async (`Event`) invocations: retries, throttling, event age and destinations.

These drive `dispatch_due()` with a fake clock: every delay is checked exactly and nothing waits.
"""

from __future__ import annotations

import logging

import pytest

from fogbank.config import FunctionsConfig
from fogbank.functions._async import AsyncInvoker
from fogbank.functions._types import RequestTooLarge
from fogbank.model import Alias, App, Destination, EventInvokeConfig, Function
from tests.functions.async_support import (
    ARN,
    CONFIG,
    SINK,
    STAMP,
    START,
    Harness,
    Throttling,
    build_app,
    config,
    drain,
    event_request,
    run,
)


def test_success_sends_the_exact_on_success_record() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(on_success=SINK))
        h.worker([{"ok": True}])
        ai = h.async_invoker()
        await ai.submit(event_request({"order": 7}))
        assert await drain(ai) == 2
        assert h.records == [
            {
                "version": "1.0",
                "timestamp": STAMP,
                "requestContext": {
                    "requestId": "req-1",
                    "functionArn": ARN + "worker:$LATEST",
                    "condition": "Success",
                    "approximateInvokeCount": 1,
                },
                "requestPayload": {"order": 7},
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
                "responsePayload": {"ok": True},
            }
        ]
        assert await h.queue.pending_count() == 0

    run(scenario())


def test_failures_are_retried_after_each_configured_delay_in_order() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(on_success=SINK))
        h.worker([ValueError("one"), ValueError("two"), "done"])
        ai = h.async_invoker()
        await ai.submit(event_request({}))
        assert await ai.dispatch_due() == 1
        for delay in CONFIG.async_retry_delays_s:
            h.clock.advance(delay - 0.01)
            assert await ai.dispatch_due() == 0
            h.clock.advance(0.01)
            assert await ai.dispatch_due() == 1
        assert await drain(ai) == 1  # the record
        assert [round(t - START, 6) for t in h.calls] == [0.0, 0.05, 0.15]
        [record] = h.records
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["responsePayload"] == "done"
        # Every retry ran under the caller's request id, as on AWS.
        assert {r.request_id for r in h.invoker.requests if r.function_name == "worker"} == {
            "req-1"
        }

    run(scenario())


def test_no_retries_sends_retries_exhausted_after_one_attempt() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(maximum_retry_attempts=0, on_failure=SINK))
        h.worker([ValueError("bad order")])
        ai = h.async_invoker()
        await ai.submit(event_request({"order": 8}))
        assert await drain(ai) == 2
        [record] = h.records
        response = record.pop("responsePayload")
        assert record == {
            "version": "1.0",
            "timestamp": STAMP,
            "requestContext": {
                "requestId": "req-1",
                "functionArn": ARN + "worker:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": {"order": 8},
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
        }
        assert (response["errorType"], response["errorMessage"]) == ("ValueError", "bad order")
        assert len(h.calls) == 1

    run(scenario())


def test_an_event_older_than_the_maximum_age_is_dropped() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(maximum_event_age_s=60, on_failure=SINK))
        h.worker([ValueError("down")])
        slow = FunctionsConfig(async_retry_delays_s=(100.0, 200.0))
        ai = AsyncInvoker(h.invoker, h.queue, lambda: h.app, slow, clock=h.clock)
        await ai.submit(event_request({"n": 1}))
        assert await ai.dispatch_due() == 1
        # The retry would come after the event expires: it is due at the expiry instead.
        assert await h.queue.next_due_at() == START + 60
        h.clock.advance(60)
        assert await drain(ai) == 2
        assert len(h.calls) == 1
        [record] = h.records
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestPayload"] == {"n": 1}
        assert "responseContext" not in record

    run(scenario())


def test_throttled_attempts_are_retried_without_counting() -> None:
    async def scenario() -> None:
        # No retries allowed: a counted throttle would end the event with RetriesExhausted.
        h = Harness(EventInvokeConfig(maximum_retry_attempts=0, on_success=SINK))
        h.worker(["ok"])
        ai = h.async_invoker(Throttling(h.invoker, times=2))
        await ai.submit(event_request({}))
        for _ in range(2):
            assert await ai.dispatch_due() == 1
            [waiting] = await h.queue.due(h.clock() + CONFIG.async_throttle_delay_s, 10)
            assert waiting.attempts == 0
            assert await ai.dispatch_due() == 0
            h.clock.advance(CONFIG.async_throttle_delay_s)
        assert await drain(ai) == 2
        [record] = h.records
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1

    run(scenario())


def test_throttled_until_too_old_expires_without_an_invocation() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(maximum_event_age_s=60, on_failure=SINK))
        h.worker(["never"])
        throttling = Throttling(h.invoker, times=1000)
        patient = FunctionsConfig(async_throttle_delay_s=25.0)
        ai = AsyncInvoker(throttling, h.queue, lambda: h.app, patient, clock=h.clock)
        await ai.submit(event_request({}))
        for _ in range(3):  # tried at 0, 25 and 50 s; due again at the 60 s expiry
            assert await ai.dispatch_due() == 1
            h.clock.now = await h.queue.next_due_at() or 0.0
        assert h.clock() == START + 60
        assert await drain(ai) == 2
        assert throttling.left == 1000 - 3
        [record] = h.records
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert h.calls == []

    run(scenario())


def test_an_alias_is_resolved_when_the_event_runs() -> None:
    async def scenario() -> None:
        h = Harness(EventInvokeConfig(on_success=SINK))
        h.app = build_app(
            EventInvokeConfig(on_success=SINK),
            versions={"1": config("worker", "1"), "2": config("worker", "2")},
            aliases={"live": Alias("live", "1")},
        )
        h.worker(["v"])
        ai = h.async_invoker()
        await ai.submit(event_request({}, qualifier="live"))
        # A redeploy between acceptance and execution re-points the alias.
        h.app = build_app(
            EventInvokeConfig(on_success=SINK),
            versions={"1": config("worker", "1"), "2": config("worker", "2")},
            aliases={"live": Alias("live", "2")},
        )
        assert await drain(ai) == 2
        assert h.invoker.requests[0].config.version == "2"
        assert h.invoker.requests[0].invoked_arn == ARN + "worker:live"
        [record] = h.records
        assert record["requestContext"]["functionArn"] == ARN + "worker:live"
        assert record["responseContext"]["executedVersion"] == "2"

    run(scenario())


def test_an_event_for_a_removed_function_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        h = Harness()
        ai = h.async_invoker()
        await ai.submit(event_request({}))
        h.app = App.build([Function(config("sink"))])
        assert await ai.dispatch_due() == 1
        assert h.invoker.requests == []
        assert await h.queue.pending_count() == 0

    run(scenario())
    assert "function worker:$LATEST no longer exists" in caplog.text


def test_other_destinations_are_named_once_and_not_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:outcomes"

    async def scenario() -> None:
        h = Harness(EventInvokeConfig(on_success=Destination(queue_arn, kind="SQS")))
        h.worker(["a", "b"])
        ai = h.async_invoker()
        await ai.submit(event_request({}, rid="r1"))
        await ai.submit(event_request({}, rid="r2"))
        assert await drain(ai) == 2
        assert h.records == []

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert caplog.text.count(queue_arn) == 1


def test_payloads_over_one_megabyte_are_refused() -> None:
    async def scenario() -> None:
        h = Harness()
        with pytest.raises(RequestTooLarge):
            await h.async_invoker().submit(event_request("x" * (1024 * 1024)))
        assert await h.queue.pending_count() == 0

    run(scenario())
