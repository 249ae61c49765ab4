"""An `Invoker` that calls plain Python callables in the current process, for unit tests.

It stands in for the process pool when a test exercises what sits above the invoker (the Invoke
API, the gateway): no processes, no isolation, no timeouts, but the same `InvokeResult` shapes. A
handler is `handler(event, context)`; it may be a coroutine function, and it may return an iterator
or async iterator of `bytes`/`str` to stream (each item goes to the sink as one chunk). A handler
that returns `bytes` has them used as the payload verbatim; anything else is serialised with
`json.dumps`, as the Python runtime does.
"""

from __future__ import annotations

import inspect
import json
import math
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fogbank.functions._types import ChunkSink, InvokeRequest, InvokeResult, ResourceNotFound

Handler = Callable[[Any, "InMemoryContext"], Any]


@dataclass(slots=True)
class InMemoryContext:
    """The subset of Lambda's context object that in-memory handlers get."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    aws_request_id: str
    client_context: str | None = None
    tenant_id: str | None = None
    log_lines: list[str] = field(default_factory=list)
    """What the handler wrote with `log()`; it becomes part of the invocation's log."""

    def get_remaining_time_in_millis(self) -> int:
        return 3_000

    def log(self, message: str) -> None:
        """Write to the invocation's log, like `LambdaContext.log` of the official runtime client."""
        self.log_lines.append(message)


class InMemoryInvoker:
    """Runs registered callables by function name; records every request it receives."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self.requests: list[InvokeRequest] = []
        """Every request received, in order (tests assert on what reached the invoker)."""

    def register(self, function_name: str, handler: Handler) -> None:
        self._handlers[function_name] = handler

    async def invoke(self, request: InvokeRequest, sink: ChunkSink | None = None) -> InvokeResult:
        self.requests.append(request)
        handler = self._handlers.get(request.function_name)
        if handler is None:
            raise ResourceNotFound(f"Function not found: {request.invoked_arn}")
        cfg = request.config
        context = InMemoryContext(
            function_name=request.function_name,
            function_version=cfg.version,
            invoked_function_arn=request.invoked_arn,
            memory_limit_in_mb=str(cfg.memory_mb),
            aws_request_id=request.request_id,
            client_context=request.client_context,
            tenant_id=request.tenant_id,
        )
        result = InvokeResult(request.request_id, b"", cfg.version)
        started = time.perf_counter()
        try:
            value = handler(json.loads(request.payload), context)
            if inspect.isawaitable(value):
                value = await value
            if isinstance(value, Iterator | AsyncIterator):
                result.payload = await _drain(value, sink)
                result.streamed = sink is not None
            elif isinstance(value, bytes):
                result.payload = value
            else:
                result.payload = _marshal(value, request.request_id, result)
        except Exception as exc:
            result.payload = _error_doc(exc, request.request_id)
            result.function_error = "Unhandled"
            result.error_type = type(exc).__name__
        result.log = _log_text(request, context, (time.perf_counter() - started) * 1000)
        return result


async def _drain(items: Iterator[Any] | AsyncIterator[Any], sink: ChunkSink | None) -> bytes:
    """Send each item to the sink; without one (a buffered call), join them into the payload."""
    kept: list[bytes] = []

    async def take(item: Any) -> None:
        chunk = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        if sink is None:
            kept.append(chunk)
        else:
            await sink(chunk)

    if isinstance(items, AsyncIterator):
        async for item in items:
            await take(item)
    else:
        for item in items:
            await take(item)
    return b"".join(kept)


def _marshal(value: Any, request_id: str, result: InvokeResult) -> bytes:
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # The Python runtime reports an unserialisable result as a function error of its own type.
        result.function_error = "Unhandled"
        result.error_type = "Runtime.MarshalError"
        doc = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
        return json.dumps(doc).encode("utf-8")


def _error_doc(exc: BaseException, request_id: str) -> bytes:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop `invoke` itself
    doc = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }
    return json.dumps(doc).encode("utf-8")


def _log_text(request: InvokeRequest, context: InMemoryContext, duration_ms: float) -> bytes:
    rid = request.request_id
    lines = [f"START RequestId: {rid} Version: {request.config.version}", *context.log_lines]
    lines.append(f"END RequestId: {rid}")
    lines.append(
        f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
        f"Memory Size: {request.config.memory_mb} MB\tMax Memory Used: 0 MB"
    )
    return ("\n".join(lines) + "\n").encode("utf-8")
