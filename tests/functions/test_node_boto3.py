"""The acceptance path: a real node on loopback, driven by boto3's real `lambda` client."""

from __future__ import annotations

import base64
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from fogbank.config import FunctionsConfig, NodeConfig
from fogbank.model import (
    Alias,
    App,
    Destination,
    EventInvokeConfig,
    Function,
    FunctionConfig,
    TenancyMode,
)

from ..conftest import NodeThread
from .conftest import write_code

HANDLER = """
import json, os, time

def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    time.sleep(event.get("hold", 0))
    print("handled", json.dumps(event))
    cc = context.client_context
    return {
        "echo": event,
        "version": context.function_version,
        "tenant": context.tenant_id,
        "custom": cc.custom if cc else None,
    }
"""

RECORDER = """
import json, os

def handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as fh:
        fh.write(json.dumps(event) + "\\n")
    return "recorded"
"""

FLAKY = """
import json, os

def handler(event, context):
    path = os.environ["COUNT_FILE"]
    count = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as fh:
        fh.write(str(count + 1))
    if count < event.get("fail_times", 0):
        raise RuntimeError(f"failure {count + 1}")
    return {"succeeded_on": count + 1}
"""


def _functions(root: Path) -> list[Function]:
    code = write_code(root, "echo", {"app.py": HANDLER})
    rec = write_code(root, "recorder", {"app.py": RECORDER})
    flaky = write_code(root, "flaky", {"app.py": FLAKY})
    echo_cfg = FunctionConfig(
        name="echo", runtime="python3.12", handler="app.handler", code_dir=code
    )
    rec_arn = "arn:aws:lambda:us-east-1:123456789012:function:recorder"
    return [
        Function(
            latest=echo_cfg,
            versions={"1": echo_cfg.published("1"), "2": echo_cfg.published("2")},
            aliases={"live": Alias("live", "1", {"2": 0.25})},
            logical_id="EchoFunction",
        ),
        Function(
            latest=FunctionConfig(
                name="tenanted", runtime="python3.12", handler="app.handler", code_dir=code
            ),
            tenancy=TenancyMode.PER_TENANT,
        ),
        Function(
            latest=FunctionConfig(
                name="single", runtime="python3.12", handler="app.handler", code_dir=code
            ),
            reserved_concurrency=1,
        ),
        Function(
            latest=FunctionConfig(
                name="recorder",
                runtime="python3.12",
                handler="app.handler",
                code_dir=rec,
                environment={"RECORD_FILE": str(root / "records.jsonl")},
            )
        ),
        Function(
            latest=FunctionConfig(
                name="flaky",
                runtime="python3.12",
                handler="app.handler",
                code_dir=flaky,
                environment={"COUNT_FILE": str(root / "count.txt")},
            ),
            event_invoke=EventInvokeConfig(
                maximum_retry_attempts=2,
                on_success=Destination(rec_arn),
                on_failure=Destination(rec_arn),
            ),
        ),
        Function(
            latest=FunctionConfig(
                name="streamer",
                runtime="python3.12",
                handler="app.handler",
                code_dir=write_code(
                    root,
                    "streamer",
                    {
                        "app.py": """
                        import time
                        def handler(event, context):
                            def gen():
                                for i in range(3):
                                    yield f"part{i}|"
                                    time.sleep(0.1)
                            return gen()
                        """
                    },
                ),
            ),
            streaming=True,
        ),
    ]


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fogbank-node-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(root: Path) -> NodeConfig:
    return NodeConfig(
        port=0,
        control_port=0,
        state_dir=root / "state",
        functions=FunctionsConfig(async_retry_delays_s=(0.05, 0.1), async_throttle_delay_s=0.05),
    )


@pytest.fixture
def node(root: Path) -> Iterator[NodeThread]:
    thread = NodeThread(_config(root), App.build(_functions(root))).start()
    yield thread
    thread.stop()


def _client(url: str, *, unsigned: bool = False) -> Any:
    config = Config(
        signature_version=UNSIGNED if unsigned else None,
        retries={"max_attempts": 0},
        read_timeout=30,
    )
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


def test_invoke_sync_signed_and_unsigned(node: NodeThread) -> None:
    for unsigned in (False, True):
        resp = _client(node.url, unsigned=unsigned).invoke(
            FunctionName="echo", Payload=json.dumps({"n": 1})
        )
        assert resp["StatusCode"] == 200
        assert resp["ExecutedVersion"] == "$LATEST"
        assert "FunctionError" not in resp
        assert json.loads(resp["Payload"].read()) == {
            "echo": {"n": 1},
            "version": "$LATEST",
            "tenant": None,
            "custom": None,
        }


def test_invoke_by_logical_id_and_qualifier(node: NodeThread) -> None:
    client = _client(node.url)
    resp = client.invoke(FunctionName="EchoFunction", Qualifier="2", Payload=b"{}")
    assert resp["ExecutedVersion"] == "2"
    assert json.loads(resp["Payload"].read())["version"] == "2"


def test_tail_log(node: NodeThread) -> None:
    resp = _client(node.url).invoke(FunctionName="echo", LogType="Tail", Payload=b'{"x": 2}')
    log = base64.b64decode(resp["LogResult"]).decode()
    assert log.startswith("START RequestId: ")
    assert 'handled {"x": 2}\n' in log
    assert "\nEND RequestId: " in log
    assert "\nREPORT RequestId: " in log
    assert "Init Duration" in log


def test_function_error(node: NodeThread) -> None:
    resp = _client(node.url).invoke(FunctionName="echo", Payload=b'{"fail": true}')
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    doc = json.loads(resp["Payload"].read())
    assert doc["errorType"] == "RuntimeError"
    assert doc["errorMessage"] == "asked to fail"
    assert isinstance(doc["stackTrace"], list)
    assert doc["requestId"] == resp["ResponseMetadata"]["RequestId"]


def test_client_context_and_tenant(node: NodeThread) -> None:
    client = _client(node.url)
    context = base64.b64encode(json.dumps({"custom": {"cart": "42"}}).encode()).decode()
    resp = client.invoke(FunctionName="echo", ClientContext=context, Payload=b"{}")
    assert json.loads(resp["Payload"].read())["custom"] == {"cart": "42"}
    resp = client.invoke(FunctionName="tenanted", TenantId="tenant-a", Payload=b"{}")
    assert json.loads(resp["Payload"].read())["tenant"] == "tenant-a"
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.invoke(FunctionName="tenanted", Payload=b"{}")


def test_dry_run(node: NodeThread) -> None:
    resp = _client(node.url).invoke(FunctionName="echo", InvocationType="DryRun")
    assert resp["StatusCode"] == 204


def test_not_found(node: NodeThread) -> None:
    client = _client(node.url)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="nope", Payload=b"{}")
    assert info.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="echo", Qualifier="9", Payload=b"{}")


def test_payload_too_large(node: NodeThread) -> None:
    client = _client(node.url)
    # Real Lambda answers with a type botocore does not model, so it is a plain ClientError.
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="echo", Payload=b'"' + b"a" * (7 * 1024 * 1024) + b'"')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert info.value.response["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )


def test_payload_not_json(node: NodeThread) -> None:
    client = _client(node.url)
    with pytest.raises(client.exceptions.InvalidRequestContentException) as info:
        client.invoke(FunctionName="echo", Payload=b"{not json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_reserved_concurrency_429(node: NodeThread) -> None:
    client = _client(node.url)

    def call(hold: float) -> dict[str, Any]:
        try:
            resp = client.invoke(FunctionName="single", Payload=json.dumps({"hold": hold}))
            return {"status": resp["StatusCode"]}
        except client.exceptions.TooManyRequestsException as exc:
            return {"status": 429, "reason": exc.response.get("Reason"), "error": exc.response}

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(call, 1.5)
        time.sleep(0.5)
        fast = pool.submit(call, 0)
        results = [slow.result(), fast.result()]
    assert results[0] == {"status": 200}
    assert results[1]["status"] == 429
    assert results[1]["reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_alias_weights_are_statistical(node: NodeThread) -> None:
    client = _client(node.url)
    counts = {"1": 0, "2": 0}
    for _ in range(400):
        resp = client.invoke(FunctionName="echo", Qualifier="live", Payload=b"{}")
        counts[resp["ExecutedVersion"]] += 1
    # 25% to version 2: 100 expected, sd ~8.7; 5 sd either side.
    assert 56 <= counts["2"] <= 144, counts


def test_response_stream(node: NodeThread) -> None:
    resp = _client(node.url).invoke_with_response_stream(FunctionName="streamer", Payload=b"{}")
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    chunks: list[bytes] = []
    complete: dict[str, Any] | None = None
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    assert chunks == [b"part0|", b"part1|", b"part2|"]
    assert complete is not None
    assert not complete.get("ErrorCode")


def _records(root: Path, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    path = root / "records.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"expected {count} destination records in {path}")


def test_async_retries_then_success_destination(node: NodeThread, root: Path) -> None:
    resp = _client(node.url).invoke(
        FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail_times": 2})
    )
    assert resp["StatusCode"] == 202
    (record,) = _records(root, 1)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:flaky:$LATEST")
    assert record["requestPayload"] == {"fail_times": 2}
    assert record["responsePayload"] == {"succeeded_on": 3}
    assert record["responseContext"]["statusCode"] == 200
    assert record["version"] == "1.0"


def test_async_retries_exhausted_failure_destination(node: NodeThread, root: Path) -> None:
    _client(node.url).invoke(
        FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail_times": 5})
    )
    (record,) = _records(root, 1)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "failure 3"


def test_async_queue_survives_restart(root: Path) -> None:
    config = NodeConfig(
        port=0,
        control_port=0,
        state_dir=root / "state",
        functions=FunctionsConfig(async_retry_delays_s=(2.0, 2.0)),
    )
    first = NodeThread(config, App.build(_functions(root))).start()
    try:
        # Fails once, then waits 2 s for its retry: the node stops before that.
        _client(first.url).invoke(
            FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail_times": 1})
        )
        deadline = time.monotonic() + 10
        while not (root / "count.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (root / "count.txt").read_text() == "1"
    finally:
        first.stop()
    assert not (root / "records.jsonl").exists()
    # A new node on the same state directory finds the stored retry and runs it when due.
    second = NodeThread(config, App.build(_functions(root))).start()
    try:
        (record,) = _records(root, 1, timeout=20.0)
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 2
    finally:
        second.stop()


AWSLAMBDARIC_APP = """
import os

def handler(event, context):
    if event.get("fail"):
        raise ValueError("custom runtime failure")
    print("ric handled", event)
    return {"echo": event, "function": context.function_name, "memory": context.memory_limit_in_mb}
"""


@pytest.fixture
def ric_node(root: Path) -> Iterator[NodeThread]:
    code = write_code(root, "ric", {"app.py": AWSLAMBDARIC_APP})
    bootstrap = code / "bootstrap"
    bootstrap.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m awslambdaric app.handler\n')
    bootstrap.chmod(0o755)
    fn = Function(
        latest=FunctionConfig(
            name="ric", runtime="provided.al2023", handler="app.handler", code_dir=code
        )
    )
    thread = NodeThread(_config(root), App.build([fn])).start()
    yield thread
    thread.stop()


def test_awslambdaric_bootstrap_sync_invoke(ric_node: NodeThread) -> None:
    client = _client(ric_node.url)
    resp = client.invoke(FunctionName="ric", Payload=b'{"a": 1}', LogType="Tail")
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {
        "echo": {"a": 1},
        "function": "ric",
        "memory": "128",
    }
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "ric handled {'a': 1}" in log
    assert "Init Duration" in log
    again = client.invoke(FunctionName="ric", Payload=b'{"a": 2}', LogType="Tail")
    assert "Init Duration" not in base64.b64decode(again["LogResult"]).decode()


def test_awslambdaric_bootstrap_function_error(ric_node: NodeThread) -> None:
    resp = _client(ric_node.url).invoke(FunctionName="ric", Payload=b'{"fail": true}')
    assert resp["FunctionError"] == "Unhandled"
    doc = json.loads(resp["Payload"].read())
    assert doc["errorType"] == "ValueError"
    assert doc["errorMessage"] == "custom runtime failure"
    assert isinstance(doc["stackTrace"], list)
