"""`fogbank invoke`: run one function once, as `sam local invoke` does."""

from __future__ import annotations

import asyncio
import sys
import uuid

import orjson

from fogbank.config import NodeConfig
from fogbank.functions._local import LocalInvoker
from fogbank.functions._resolve import resolve
from fogbank.functions._types import InvocationError, InvokeRequest, InvokeResult
from fogbank.model import App


async def invoke_once(
    config: NodeConfig, app: App, name: str, payload: bytes, tenant_id: str | None
) -> InvokeResult:
    invoker = LocalInvoker(config, lambda: app)
    await invoker.start()
    try:
        target, _, qualifier = name.partition(":")
        found = resolve(app, target, qualifier or None)
        request = InvokeRequest(
            function_name=found.function.name,
            config=found.config,
            payload=payload,
            request_id=str(uuid.uuid4()),
            invoked_arn=found.invoked_arn,
            tenant_id=tenant_id,
        )
        return await invoker.invoke(request)
    finally:
        await invoker.stop()


def run(config: NodeConfig, app: App, name: str, payload: bytes, tenant_id: str | None) -> int:
    """Print the result on stdout and the log on stderr; 1 on a function error."""
    try:
        orjson.loads(payload or b"{}")
    except orjson.JSONDecodeError as exc:
        sys.stderr.write(f"error: the event is not valid JSON: {exc}\n")
        return 2
    try:
        result = asyncio.run(invoke_once(config, app, name, payload, tenant_id))
    except InvocationError as exc:
        sys.stderr.write(f"error: {exc.error_type}: {exc.message}\n")
        return 2
    sys.stderr.buffer.write(result.log)
    sys.stderr.flush()
    sys.stdout.buffer.write(result.payload + b"\n")
    sys.stdout.flush()
    return 1 if result.function_error else 0
