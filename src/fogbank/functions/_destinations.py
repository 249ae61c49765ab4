"""Destinations of asynchronous invocations: the outcome record and where it goes.

Lambda destinations are delivered as one more async event (the record is its payload), so the
destination function gets the same retries and durability as any event. SQS, SNS and EventBridge
destinations do not exist locally: they are named once in the log and otherwise skipped.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fogbank.functions._types import InvokeResult
from fogbank.model import LATEST, App, Destination, Function, TenancyMode
from fogbank.store import QueuedEvent

log = logging.getLogger(__name__)


class Condition(enum.Enum):
    """`requestContext.condition` of a destination record: why the event left the queue."""

    SUCCESS = "Success"
    """The function returned a result; the record goes to the on-success destination."""
    RETRIES_EXHAUSTED = "RetriesExhausted"
    """The function failed on its first try and on every retry; on-failure destination."""
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    """The event waited longer than `MaximumEventAgeInSeconds`; on-failure destination."""


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """How an async event ended, as much as its destination record tells."""

    condition: Condition
    invoke_count: int
    """`approximateInvokeCount`: invocations that ran, throttled tries not included."""
    result: InvokeResult | None = None
    """The last invocation's result; None when the event expired before it ever ran."""


def _timestamp(epoch_s: float) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, as AWS writes record timestamps."""
    text = datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _as_json(payload: bytes) -> object:
    """A payload embedded as JSON; text that is not JSON is kept as a string rather than lost."""
    if not payload.strip():
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def destination_record(
    event: QueuedEvent, fn: Function, app: App, outcome: RecordOutcome, now: float
) -> dict[str, object]:
    """The record AWS sends to a destination, field for field."""
    record: dict[str, object] = {
        "version": "1.0",
        "timestamp": _timestamp(now),
        "requestContext": {
            "requestId": event.id,
            "functionArn": app.identity.function_arn(fn.name, event.qualifier),
            "condition": outcome.condition.value,
            "approximateInvokeCount": outcome.invoke_count,
        },
        "requestPayload": _as_json(event.payload),
    }
    result = outcome.result
    if result is not None:
        context: dict[str, object] = {"statusCode": 200, "executedVersion": result.executed_version}
        if result.function_error is not None:
            context["functionError"] = result.function_error
        record["responseContext"] = context
        record["responsePayload"] = _as_json(result.payload)
    return record


def _target(arn: str) -> tuple[str, str]:
    """Function name and qualifier of a Lambda destination (an ARN, or `name[:qualifier]`)."""
    if arn.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        parts = arn.split(":")
        name = parts[6] if len(parts) > 6 else ""
        qualifier = parts[7] if len(parts) > 7 else LATEST
        return name, qualifier
    name, _, qualifier = arn.partition(":")
    return name, qualifier or LATEST


class DestinationRouter:
    """Turns the end of an async event into the follow-up event that delivers its record."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._warned: set[str] = set()

    def follow_up(
        self, event: QueuedEvent, fn: Function, app: App, outcome: RecordOutcome, new_id: str
    ) -> QueuedEvent | None:
        """The event delivering `outcome` to the function's destination, if it has a Lambda one."""
        settings = fn.event_invoke
        success = outcome.condition is Condition.SUCCESS
        destination = settings.on_success if success else settings.on_failure
        if destination is None or not self._deliverable(destination, fn):
            return None
        name, qualifier = _target(destination.arn)
        target = app.find_function(name)
        if target is None:
            log.warning(
                "destination %s of %s not delivered: no such function", destination.arn, fn.name
            )
            return None
        now = self._clock()
        record = destination_record(event, fn, app, outcome, now)
        return QueuedEvent(
            id=new_id,
            function_name=target.name,
            qualifier=qualifier,
            payload=json.dumps(record).encode(),
            enqueued_at=now,
            next_attempt_at=now,
            invoked_arn=app.identity.function_arn(
                target.name, None if qualifier == LATEST else qualifier
            ),
            # A tenant-isolated destination needs the tenant; a shared one has no use for it.
            tenant_id=event.tenant_id if target.tenancy is TenancyMode.PER_TENANT else None,
        )

    def _deliverable(self, destination: Destination, fn: Function) -> bool:
        if destination.kind == "Lambda":
            return True
        if destination.arn not in self._warned:
            self._warned.add(destination.arn)
            log.warning(
                "%s destination %s of %s is not delivered locally (only Lambda destinations are)",
                destination.kind,
                destination.arn,
                fn.name,
            )
        return False
