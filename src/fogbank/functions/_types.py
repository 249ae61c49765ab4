"""The types every part of the function machinery shares: requests, results, errors, interfaces."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fogbank._errors import FogbankError
from fogbank.model import FunctionConfig

ChunkSink = Callable[[bytes], Awaitable[None]]
"""Receives each chunk of a streamed response as the handler produces it."""

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
LOG_TAIL_BYTES = 4096


class InitType(enum.Enum):
    """`AWS_LAMBDA_INITIALIZATION_TYPE` of an environment."""

    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned-concurrency"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One invocation as it reaches an execution environment."""

    request_id: str
    payload: bytes
    invoked_arn: str
    deadline_ms: int
    """Epoch milliseconds by which the invocation must end."""
    trace_id: str = ""
    client_context: str | None = None
    """The decoded `ClientContext` JSON text, if the caller sent one."""
    cognito_identity: str | None = None
    tenant_id: str | None = None
    stream: bool = False
    """True when the caller reads the response as a stream (chunks go to a `ChunkSink`)."""


@dataclass(slots=True)
class EnvResult:
    """What one environment reports for one invocation."""

    payload: bytes
    """The serialised result, or the error document `{errorMessage, errorType, stackTrace}`."""
    error_type: str | None = None
    """Set when the invocation failed (`Runtime.ImportModuleError`, `Sandbox.Timedout`, ...)."""
    output: bytes = b""
    """What the handler wrote to stdout and stderr during the invocation."""
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    init_duration_ms: float | None = None
    """Set on the first invocation of an environment (a cold start)."""
    env_lost: bool = False
    """True when the environment can no longer be used (crash, timeout, memory, init failure)."""
    streamed: bool = False


class EnvState(enum.Enum):
    """Life cycle of an execution environment."""

    STARTING = "starting"
    """Forked or spawned; the init phase has not finished."""
    IDLE = "idle"
    """Initialised and waiting for an invocation."""
    BUSY = "busy"
    """Running exactly one invocation."""
    DEAD = "dead"
    """Stopped or crashed; never used again."""


class ExecutionEnvironment(Protocol):
    """One OS process that runs one invocation at a time."""

    env_id: str
    config: FunctionConfig
    tenant_id: str | None
    state: EnvState
    last_used: float

    @property
    def pid(self) -> int | None: ...

    async def invoke(self, invocation: Invocation, sink: ChunkSink | None = None) -> EnvResult:
        """Run one invocation. Never raises for function failures: they are in the result."""
        ...

    async def stop(self) -> None:
        """Stop the process (SIGKILL after a short grace) and release its resources."""
        ...


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    """A resolved request to run a function version, as the invoker receives it."""

    function_name: str
    config: FunctionConfig
    """The configuration of the version that runs (its `.version` is `X-Amz-Executed-Version`)."""
    payload: bytes
    request_id: str
    invoked_arn: str
    client_context: str | None = None
    tenant_id: str | None = None
    tail_log: bool = False
    trace_id: str = ""
    stream: bool = False


@dataclass(slots=True)
class InvokeResult:
    """The outcome of one invocation, as the Invoke API and the gateway need it."""

    request_id: str
    payload: bytes
    executed_version: str
    function_error: str | None = None
    """`Unhandled` when the function failed, else None."""
    error_type: str | None = None
    log: bytes = b""
    """START ... REPORT text for this invocation (what `LogType: Tail` returns the end of)."""
    streamed: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class Invoker(Protocol):
    """How the gateway and the APIs reach functions; local pools, in-memory, or a remote node."""

    async def invoke(
        self, request: InvokeRequest, sink: ChunkSink | None = None
    ) -> InvokeResult: ...


class InvocationError(FogbankError):
    """An invocation that never ran, with the Lambda API's status and error type."""

    status = 500
    error_type = "ServiceException"
    message_key = "Message"
    """The member that carries the text; botocore's model spells it per error shape."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, str]:
        doc = {"Type": "User" if self.status < 500 else "Service", self.message_key: self.message}
        if self.reason:
            doc["Reason"] = self.reason
        return doc


class ResourceNotFound(InvocationError):
    status = 404
    error_type = "ResourceNotFoundException"


class TooManyRequests(InvocationError):
    message_key = "message"
    status = 429
    error_type = "TooManyRequestsException"


class RequestTooLarge(InvocationError):
    message_key = "message"
    status = 413
    error_type = "RequestEntityTooLargeException"


class InvalidRequestContent(InvocationError):
    message_key = "message"
    status = 400
    error_type = "InvalidRequestContentException"


class InvalidParameterValue(InvocationError):
    message_key = "message"
    status = 400
    error_type = "InvalidParameterValueException"


class UnsupportedMediaType(InvocationError):
    message_key = "message"
    status = 415
    error_type = "UnsupportedMediaTypeException"


class ResponseTooLarge(InvocationError):
    message_key = "message"
    status = 413
    error_type = "RequestEntityTooLargeException"


class AsyncSubmitter(Protocol):
    """Accepts `Event` invocations: stores them durably and runs them later with retries."""

    async def submit(self, request: InvokeRequest) -> None:
        """Queue one event; returns once it is stored (the Invoke API then answers 202)."""
        ...
