"""Lambda functions: execution environments, invokers, the Invoke and Runtime APIs."""

from fogbank.functions._async import AsyncInvoker
from fogbank.functions._local import LocalInvoker
from fogbank.functions._logs import LogStore
from fogbank.functions._memory import InMemoryInvoker
from fogbank.functions._types import (
    AsyncSubmitter,
    ChunkSink,
    InvocationError,
    Invoker,
    InvokeRequest,
    InvokeResult,
    ResourceNotFound,
    TooManyRequests,
)

__all__ = [
    "AsyncInvoker",
    "AsyncSubmitter",
    "ChunkSink",
    "InMemoryInvoker",
    "InvocationError",
    "InvokeRequest",
    "InvokeResult",
    "Invoker",
    "LocalInvoker",
    "LogStore",
    "ResourceNotFound",
    "TooManyRequests",
]
