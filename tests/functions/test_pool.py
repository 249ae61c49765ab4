"""Pool behaviour: provisioned concurrency, idle shrinking, the node-wide limit, client context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fogbank.functions._types import InvokeRequest, TooManyRequests
from fogbank.model import Alias, Function, FunctionConfig

from .conftest import Harness, write_code

pytestmark = pytest.mark.anyio

INFO = """
import os, time
def handler(event, context):
    time.sleep(event.get("hold", 0))
    cc = context.client_context
    return {
        "pid": os.getpid(),
        "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "custom": cc.custom if cc else None,
        "client": cc.client.app_title if cc and cc.client else None,
        "env": cc.env if cc else None,
    }
"""


@pytest.fixture
async def small(code_root: Path) -> AsyncIterator[Harness]:
    h = Harness(code_root, max_environments=2, idle_timeout_s=0.5)
    await h.invoker.start()
    try:
        yield h
    finally:
        await h.invoker.stop()


async def test_provisioned_environments_are_warm_before_first_invoke(code_root: Path) -> None:
    h = Harness(code_root)
    code = write_code(code_root, "prov", {"app.py": INFO})
    cfg = FunctionConfig(name="prov", runtime="python3.12", handler="app.handler", code_dir=code)
    h.deploy(
        Function(
            latest=cfg,
            versions={"1": cfg.published("1")},
            aliases={"live": Alias("live", "1")},
            provisioned_concurrency={"live": 2},
        )
    )
    await h.invoker.start()
    try:
        first = await h.invoke("prov", version="1")
        assert json.loads(first.payload)["init"] == "provisioned-concurrency"
        # A provisioned environment was initialised ahead of time: no Init Duration now.
        assert b"Init Duration" not in first.log
        latest = await h.invoke("prov")
        assert json.loads(latest.payload)["init"] == "on-demand"
    finally:
        await h.invoker.stop()


async def test_idle_environments_are_stopped(small: Harness) -> None:
    small.function("idle", INFO)
    pid = json.loads((await small.invoke("idle")).payload)["pid"]
    await asyncio.sleep(2.0)
    again = await small.invoke("idle")
    assert json.loads(again.payload)["pid"] != pid
    assert b"Init Duration" in again.log


async def test_node_wide_limit(small: Harness) -> None:
    small.function("a", INFO)
    small.function("b", INFO)
    hold = json.dumps({"hold": 1}).encode()
    first = asyncio.create_task(small.invoke("a", hold))
    second = asyncio.create_task(small.invoke("b", hold))
    await asyncio.sleep(0.4)
    with pytest.raises(TooManyRequests) as info:
        await small.invoke("a")
    assert info.value.reason == "ConcurrentInvocationLimitExceeded"
    assert info.value.status == 429
    await asyncio.gather(first, second)
    assert (await small.invoke("a")).function_error is None


async def test_client_context_reaches_the_handler(harness: Harness) -> None:
    fn = harness.function("cc", INFO)
    context = {"client": {"app_title": "shop"}, "custom": {"k": "v"}, "env": {"locale": "en"}}
    request = InvokeRequest(
        function_name="cc",
        config=fn.latest,
        payload=b"{}",
        request_id="11111111-2222-3333-4444-555555555555",
        invoked_arn=harness.app.identity.function_arn("cc"),
        client_context=json.dumps(context),
    )
    result = await harness.invoker.invoke(request)
    doc = json.loads(result.payload)
    assert doc["custom"] == {"k": "v"}
    assert doc["client"] == "shop"
    assert doc["env"] == {"locale": "en"}
