"""The response side of `InvokeWithResponseStream`: chunks out as event stream messages, as they come.

The HTTP response starts with the first chunk (or at the end, for a handler that streamed nothing),
so an invocation that fails before producing anything still gets a plain JSON error response.
Once the response has started the status is 200 whatever happens, and a failure can only be
reported in the closing `InvokeComplete` event (`ErrorCode`, `ErrorDetails`).

Function errors: `ErrorCode` is the error type (`ValueError`, `Runtime.MarshalError`, ...; the
function error, `Unhandled`, when the type is unknown) and `ErrorDetails` the error document
`{errorMessage, errorType, requestId, stackTrace}` as text. A handler that returned a plain value
instead of streaming has it sent as a single `PayloadChunk`.
"""

from __future__ import annotations

import base64
import logging

from fogbank._asgi import Send
from fogbank.functions._eventstream import EVENTSTREAM_CONTENT_TYPE, invoke_complete, payload_chunk
from fogbank.functions._types import (
    LOG_TAIL_BYTES,
    InvocationError,
    Invoker,
    InvokeRequest,
    InvokeResult,
)

_CONTENT_TYPE = (b"content-type", EVENTSTREAM_CONTENT_TYPE.encode())


class _Response:
    """One streamed HTTP response: starts lazily, sends each frame as soon as it exists."""

    def __init__(self, send: Send, request: InvokeRequest) -> None:
        self._send = send
        self.started = False
        self._start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                _CONTENT_TYPE,
                (b"x-amzn-RequestId", request.request_id.encode()),
                (b"X-Amz-Executed-Version", request.config.version.encode()),
            ],
        }

    async def frame(self, data: bytes, *, last: bool = False) -> None:
        if not self.started:
            self.started = True
            await self._send(self._start)
        await self._send({"type": "http.response.body", "body": data, "more_body": not last})

    async def chunk(self, data: bytes) -> None:
        """The `ChunkSink` handed to the invoker."""
        if data:  # an empty PayloadChunk carries nothing; don't make the client parse one
            await self.frame(payload_chunk(data))


async def stream_invocation(
    invoker: Invoker,
    request: InvokeRequest,
    send: Send,
    tail_log: bool,
    log: logging.Logger,
) -> None:
    """Run `request` and stream its output to `send`; raise only if nothing was sent yet."""
    response = _Response(send, request)
    try:
        result = await invoker.invoke(request, response.chunk)
    except InvocationError as exc:
        if not response.started:
            raise
        closing = invoke_complete(exc.error_type, exc.message)
    except Exception:
        if not response.started:
            raise
        log.exception("streaming invocation failed mid-stream, request id %s", request.request_id)
        closing = invoke_complete(
            "ServiceException",
            f"An internal error occurred (request id {request.request_id}); see the fogbank log.",
        )
    else:
        if result.payload and not result.streamed and not result.function_error:
            await response.frame(payload_chunk(result.payload))
        closing = _completion(result, tail_log)
    await response.frame(closing, last=True)


def _completion(result: InvokeResult, tail_log: bool) -> bytes:
    log_result = base64.b64encode(result.log[-LOG_TAIL_BYTES:]).decode() if tail_log else None
    if not result.function_error:
        return invoke_complete(log_result=log_result)
    return invoke_complete(
        result.error_type or result.function_error,
        result.payload.decode("utf-8", "replace"),
        log_result,
    )
