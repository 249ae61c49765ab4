"""The Lambda Runtime API of one execution environment: what a custom runtime's `bootstrap` calls.

The runtime long-polls `GET /runtime/invocation/next` for an event and answers on
`/runtime/invocation/{id}/response` or `/error`. `RuntimeApiServer.dispatch` queues an invocation
for the next `/next` and returns a `Handover` whose future the runtime's answer resolves. Status
codes, bodies and state names follow Lambda's own Runtime API server (RAPID), so runtimes that
inspect them behave as they do on AWS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import unquote

import h11

from fogbank.functions._runtime_http import Exchange
from fogbank.functions._types import MAX_SYNC_PAYLOAD, ChunkSink, Invocation

MAX_RESPONSE_BYTES = MAX_SYNC_PAYLOAD + 100
"""The largest buffered response a runtime may post: Lambda's 6 MB plus its 100 bytes of slack."""

ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"
RESPONSE_MODE_HEADER = "lambda-runtime-function-response-mode"
RESPONSE_SIZE_TOO_LARGE = "Function.ResponseSizeTooLarge"
_BASE = "/2018-06-01/runtime/"
_OK = b'{"status":"OK"}'

Handler = Callable[[Exchange], Awaitable[None]]


class RuntimeState(enum.Enum):
    """Where the runtime is in its life cycle; the values are RAPID's names, seen in 403 messages."""

    STARTED = "Started"
    """Spawned; no event handed over yet (init, or waiting for the first event)."""
    INIT_ERROR = "InitError"
    """The runtime reported an init error; nothing else is allowed."""
    READY = "Ready"
    """An event was handed over and awaits its answer."""
    INVOCATION_RESPONSE = "InvocationResponse"
    """A `/response` body is arriving."""
    INVOCATION_ERROR_RESPONSE = "InvocationErrorResponse"
    """An `/error` body is arriving."""
    RESPONSE_SENT = "RuntimeResponseSentState"
    """The last invocation was answered; the runtime should call `/next` again."""


class ReplyKind(enum.Enum):
    """Which endpoint ended an invocation."""

    RESPONSE = "response"
    """`/response`: the function's result (or, streamed, its end)."""
    ERROR = "error"
    """`/error`, a streamed error in trailers, or a response too large to accept."""
    INIT_ERROR = "init_error"
    """`/init/error`: the runtime could not initialise; the environment is unusable."""


@dataclass(frozen=True, slots=True)
class RuntimeReply:
    """How the runtime ended one invocation."""

    kind: ReplyKind
    body: bytes
    """The result, or the error document as the runtime posted it."""
    error_type: str | None = None
    streamed: bool = False
    """True when the chunks went to the invocation's `ChunkSink` (the body is then empty)."""
    received_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False, slots=True)
class Handover:
    """One invocation given to the runtime, filled in as the runtime takes and answers it."""

    invocation: Invocation
    sink: ChunkSink | None
    reply: asyncio.Future[RuntimeReply]
    handed_at: float | None = None
    """`time.monotonic()` when `/next` delivered the event; None while it waits."""
    sink_error: Exception | None = None
    """What the sink raised, if it failed; later chunks were dropped."""

    def resolve(self, reply: RuntimeReply) -> None:
        if not self.reply.done():
            self.reply.set_result(reply)


def new_trace_id() -> str:
    """An X-Ray trace header, as Lambda gives every invocation one even when the caller sent none."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def _error_doc(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _error_type_of(ex: Exchange, body: bytes, default: str) -> str:
    """The header wins; awslambdaric sends none on `/error`, so fall back to the body's errorType."""
    header = ex.header(ERROR_TYPE_HEADER)
    if header:
        return header
    try:
        doc = json.loads(body)
    except ValueError:
        return default
    found = doc.get("errorType") if isinstance(doc, dict) else None
    return found if isinstance(found, str) and found else default


class RuntimeApiServer:
    """Serves the Runtime API to one runtime process on 127.0.0.1 and an ephemeral port."""

    def __init__(
        self,
        *,
        on_first_next: Callable[[], None] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.state = RuntimeState.STARTED
        self.first_next_at: float | None = None
        """`time.monotonic()` of the first `/next`: the end of the init phase."""
        self.init_error: RuntimeReply | None = None
        self.settled = asyncio.Event()
        """Set when the init phase ends: at the first `/next`, or at `/init/error`."""
        self._on_first_next = on_first_next
        self._max_response = max_response_bytes
        self._pending: Handover | None = None
        self._has_pending = asyncio.Event()
        self._current: Handover | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port = 0

    @property
    def address(self) -> str:
        """`host:port`, the value of `AWS_LAMBDA_RUNTIME_API`."""
        return f"127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection, including long polls on `/next`."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def dispatch(self, invocation: Invocation, sink: ChunkSink | None = None) -> Handover:
        """Queue an invocation for the runtime's next `/next`; its future resolves with the answer."""
        handover = Handover(invocation, sink, asyncio.get_running_loop().create_future())
        if self.init_error is not None:
            handover.resolve(self.init_error)
            return handover
        self._pending = handover
        self._has_pending.set()
        return handover

    def abandon(self) -> None:
        """Forget the queued and running invocation (timed out, or the process died)."""
        self._pending = None
        self._has_pending.clear()
        self._current = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        ex = Exchange(reader, writer)
        try:
            # One keep-alive connection carries every call of a runtime like awslambdaric.
            while await ex.next_request():
                await self._route(ex)
        except (h11.RemoteProtocolError, ConnectionError):
            pass  # a runtime that hangs up or speaks broken HTTP only loses its own connection
        finally:
            self._connections.discard(task)
            writer.close()

    def _match(self, path: str) -> tuple[str, Handler] | None:
        parts = path[len(_BASE) :].split("/") if path.startswith(_BASE) else []
        if parts == ["invocation", "next"]:
            return "GET", self._on_next
        if parts == ["init", "error"]:
            return "POST", self._on_init_error
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response":
            return "POST", partial(self._on_response, request_id=parts[1])
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "error":
            return "POST", partial(self._on_error, request_id=parts[1])
        return None

    async def _route(self, ex: Exchange) -> None:
        route = self._match(unquote(ex.path))
        if route is None:
            await ex.read_body(0)
            await ex.respond(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")
        elif ex.method != route[0]:
            await ex.read_body(0)
            await ex.respond(405, b"", content_type="text/plain; charset=utf-8")
        else:
            await route[1](ex)

    async def _forbidden(self, ex: Exchange, target: RuntimeState) -> None:
        await ex.read_body(0)
        message = (
            f"State transition from {self.state.value} to {target.value} failed for runtime. "
            "Error: State transition is not allowed"
        )
        await ex.respond(403, _error_doc(message, "InvalidStateTransition"))

    async def _on_next(self, ex: Exchange) -> None:
        await ex.read_body(0)
        if self.state is RuntimeState.INIT_ERROR:
            await self._forbidden(ex, RuntimeState.READY)
            return
        if self.first_next_at is None:
            self.first_next_at = time.monotonic()
            self.settled.set()
            if self._on_first_next is not None:
                self._on_first_next()
        handover = await self._wait_for_invocation(ex)
        if handover is None:
            return
        inv = handover.invocation
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn),
            ("Lambda-Runtime-Trace-Id", inv.trace_id or new_trace_id()),
        ]
        for name, value in (
            ("Lambda-Runtime-Client-Context", inv.client_context),
            ("Lambda-Runtime-Cognito-Identity", inv.cognito_identity),
            ("Lambda-Runtime-Aws-Tenant-Id", inv.tenant_id),
        ):
            if value:
                # JSON allows line breaks between tokens, a header value does not; spaces keep
                # the JSON valid and the header legal.
                headers.append((name, value.replace("\r", " ").replace("\n", " ")))
        self._current = handover
        self.state = RuntimeState.READY
        handover.handed_at = time.monotonic()
        await ex.respond(200, inv.payload, headers=headers)

    async def _wait_for_invocation(self, ex: Exchange) -> Handover | None:
        """Long-poll until an invocation is queued; None if the runtime hangs up meanwhile.

        Watching the socket too keeps an event from going to a connection nobody reads any more.
        """
        while self._pending is None:
            queued = asyncio.ensure_future(self._has_pending.wait())
            hangup = asyncio.ensure_future(ex.wait_closed())
            try:
                await asyncio.wait({queued, hangup}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                queued.cancel()
                hangup.cancel()
                # A read being cancelled still owns the stream until it has unwound.
                await asyncio.wait({queued, hangup})
            if hangup.done() and not hangup.cancelled() and hangup.result():
                return None
        handover, self._pending = self._pending, None
        self._has_pending.clear()
        return handover

    def _answering(self, request_id: str) -> Handover | None:
        current = self._current
        if current is None or current.invocation.request_id != request_id:
            return None
        return current

    def _finish(self, handover: Handover, reply: RuntimeReply) -> None:
        self.state = RuntimeState.RESPONSE_SENT
        if self._current is handover:
            self._current = None
        handover.resolve(reply)

    async def _check_answer(
        self, ex: Exchange, request_id: str, target: RuntimeState
    ) -> Handover | None:
        if self.state is not RuntimeState.READY:
            await self._forbidden(ex, target)
            return None
        handover = self._answering(request_id)
        if handover is None:
            await ex.read_body(0)
            await ex.respond(400, _error_doc("Invalid request ID", "InvalidRequestID"))
            return None
        self.state = target
        return handover

    async def _on_response(self, ex: Exchange, request_id: str) -> None:
        handover = await self._check_answer(ex, request_id, RuntimeState.INVOCATION_RESPONSE)
        if handover is None:
            return
        if (ex.header(RESPONSE_MODE_HEADER) or "").lower() == "streaming":
            self._finish(handover, await self._receive_stream(ex, handover))
            await ex.respond(202, _OK)
            return
        body = await ex.read_body(self._max_response)
        if body.size > self._max_response:
            message = (
                f"Response payload size ({body.size} bytes) exceeded maximum allowed payload "
                f"size ({self._max_response} bytes)."
            )
            doc = _error_doc(message, RESPONSE_SIZE_TOO_LARGE)
            self._finish(handover, RuntimeReply(ReplyKind.ERROR, doc, RESPONSE_SIZE_TOO_LARGE))
            message = f"Exceeded maximum allowed payload size ({self._max_response} bytes)."
            await ex.respond(413, _error_doc(message, "RequestEntityTooLarge"))
            return
        self._finish(handover, RuntimeReply(ReplyKind.RESPONSE, body.data))
        await ex.respond(202, _OK)

    async def _receive_stream(self, ex: Exchange, handover: Handover) -> RuntimeReply:
        """Forward the chunked body to the sink as it arrives; errors come in the trailers."""
        sink = handover.sink
        collected = bytearray()

        async def forward(chunk: bytes) -> None:
            nonlocal sink
            if sink is None:
                collected.extend(chunk)
                return
            try:
                await sink(chunk)
            except Exception as exc:
                # The caller's own sink failed (its client went away, say). The function runs on,
                # as on Lambda: drop later chunks, and the caller gets the error back at the end.
                sink = None
                handover.sink_error = exc

        trailers = await ex.stream_body(forward)
        streamed = handover.sink is not None
        error_type = trailers.get(ERROR_TYPE_HEADER)
        if not error_type:
            return RuntimeReply(ReplyKind.RESPONSE, bytes(collected), streamed=streamed)
        try:
            body = base64.b64decode(trailers.get(ERROR_BODY_TRAILER, ""), validate=True)
        except binascii.Error:
            body = trailers.get(ERROR_BODY_TRAILER, "").encode()
        return RuntimeReply(ReplyKind.ERROR, body, error_type, streamed=streamed)

    async def _on_error(self, ex: Exchange, request_id: str) -> None:
        handover = await self._check_answer(ex, request_id, RuntimeState.INVOCATION_ERROR_RESPONSE)
        if handover is None:
            return
        body = (await ex.read_body(self._max_response)).data
        error_type = _error_type_of(ex, body, "Unhandled")
        self._finish(
            handover, RuntimeReply(ReplyKind.ERROR, body or _error_doc("", error_type), error_type)
        )
        await ex.respond(202, _OK)

    async def _on_init_error(self, ex: Exchange) -> None:
        if self.state is not RuntimeState.STARTED:
            await self._forbidden(ex, RuntimeState.INIT_ERROR)
            return
        body = (await ex.read_body(self._max_response)).data
        error_type = _error_type_of(ex, body, "Runtime.Unknown")
        reply = RuntimeReply(ReplyKind.INIT_ERROR, body or _error_doc("", error_type), error_type)
        self.state = RuntimeState.INIT_ERROR
        self.init_error = reply
        self.settled.set()
        if self._pending is not None:
            self._pending.resolve(reply)
        self.abandon()
        await ex.respond(202, _OK)
