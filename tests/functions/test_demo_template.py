"""The bundled demo template, loaded from SAM and served by a real node, driven by boto3."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from fogbank.cli._common import EXAMPLE_TEMPLATE
from fogbank.config import FunctionsConfig, NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread


@pytest.fixture(scope="module")
def demo() -> Iterator[NodeThread]:
    state = Path(tempfile.mkdtemp(prefix="fogbank-demo-", dir="/var/tmp"))
    config = NodeConfig(
        port=0,
        control_port=0,
        state_dir=state,
        functions=FunctionsConfig(async_retry_delays_s=(0.05, 0.05)),
    )
    thread = NodeThread(config, load_template(EXAMPLE_TEMPLATE)).start()
    yield thread
    thread.stop()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def client(demo: NodeThread) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=demo.url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}),
    )


def test_list_functions(client: Any) -> None:
    names = sorted(f["FunctionName"] for f in client.list_functions()["Functions"])
    assert names == [
        "AuditFunction",
        "CatalogFunction",
        "CustomFunction",
        "OrdersFunction",
        "StreamFunction",
        "hello",
    ]
    hello = client.get_function(FunctionName="HelloFunction")["Configuration"]
    assert hello["FunctionName"] == "hello"
    assert hello["Runtime"] == "python3.12"
    assert hello["Timeout"] == 10
    assert hello["MemorySize"] == 256
    assert hello["Environment"]["Variables"] == {"STAGE": "dev"}
    assert [layer["Arn"] for layer in hello["Layers"]] == [
        "arn:aws:lambda:us-east-1:123456789012:layer:shop-common:1"
    ]


def test_layer_code_and_globals(client: Any) -> None:
    resp = client.invoke(FunctionName="hello", Payload=b'{"name": "Ada"}')
    doc = json.loads(resp["Payload"].read())
    assert doc["message"] == "Hello, Ada! (stage dev)"


def test_auto_publish_alias(client: Any) -> None:
    aliases = client.list_aliases(FunctionName="OrdersFunction")["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in aliases] == [("live", "1")]
    versions = client.list_versions_by_function(FunctionName="OrdersFunction")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    resp = client.invoke(FunctionName="OrdersFunction:live", Payload=b'{"items": [1, 2]}')
    assert resp["ExecutedVersion"] == "1"
    assert json.loads(resp["Payload"].read())["version"] == "1"
    concurrency = client.get_function(FunctionName="OrdersFunction")["Concurrency"]
    assert concurrency == {"ReservedConcurrentExecutions": 10}


def test_async_failure_reaches_the_audit_destination(demo: NodeThread, client: Any) -> None:
    resp = client.invoke(
        FunctionName="OrdersFunction", InvocationType="Event", Payload=b'{"items": []}'
    )
    assert resp["StatusCode"] == 202
    log = demo.config.logs_dir / "AuditFunction.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log.exists() and '"audit": "RetriesExhausted"' in log.read_text():
            break
        time.sleep(0.05)
    text = log.read_text()
    assert '{"audit": "RetriesExhausted", "payload": {"items": []}}' in text
    orders = (demo.config.logs_dir / "OrdersFunction.log").read_text()
    # MaximumRetryAttempts: 1 in the template: two attempts in all.
    assert orders.count("[ERROR] ValueError: an order needs at least one item") == 2


def test_streaming_and_custom_runtime(client: Any) -> None:
    stream = client.invoke_with_response_stream(
        FunctionName="StreamFunction", Payload=b'{"count": 3}'
    )
    chunks = [e["PayloadChunk"]["Payload"] for e in stream["EventStream"] if "PayloadChunk" in e]
    assert chunks == [b"line 1 of 3\n", b"line 2 of 3\n", b"line 3 of 3\n"]
    custom = client.invoke(FunctionName="CustomFunction", Payload=b'{"k": "v"}')
    assert json.loads(custom["Payload"].read()) == {
        "echo": {"k": "v"},
        "runtime": "provided.al2023",
    }
