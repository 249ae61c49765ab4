"""The Lambda API against a real uvicorn server, driven by real boto3 (signed and unsigned) and httpx.

Functions run in the `InMemoryInvoker`, so these tests are about the wire: paths, headers, status
codes, error shapes and the event stream, exactly as botocore's Lambda model parses them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from fogbank.functions._invoke_api import InvokeApi
from fogbank.functions._memory import InMemoryContext, InMemoryInvoker
from fogbank.functions._types import ChunkSink, InvokeRequest, InvokeResult
from fogbank.model import Alias, App, Function, FunctionConfig, Identity, Layer, TenancyMode

ARN = "arn:aws:lambda:us-east-1:123456789012:function"
GATE = threading.Event()
GATED_DONE = threading.Event()


class ScriptedRandom(random.Random):
    """Alias draws chosen by the test; 0.99 (the primary version) when none is queued."""

    def __init__(self) -> None:
        super().__init__(0)
        self.draws: list[float] = []

    def random(self) -> float:
        return self.draws.pop(0) if self.draws else 0.99


class RecordingSubmitter:
    def __init__(self) -> None:
        self.requests: list[InvokeRequest] = []

    async def submit(self, request: InvokeRequest) -> None:
        self.requests.append(request)


class BreakableInvoker(InMemoryInvoker):
    """Fails like a buggy invoker (not like a function) for the function named `broken`."""

    async def invoke(self, request: InvokeRequest, sink: ChunkSink | None = None) -> InvokeResult:
        if request.function_name == "broken":
            raise RuntimeError("invoker exploded")
        return await super().invoke(request, sink)


def hello(event: Any, context: InMemoryContext) -> Any:
    context.log(f"hello called with {json.dumps(event)}")
    return {
        "event": event,
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "client_context": context.client_context,
        "tenant": context.tenant_id,
    }


def boom(event: Any, context: InMemoryContext) -> Any:
    raise ValueError("kaput")


def chatty(event: Any, context: InMemoryContext) -> Any:
    for i in range(200):
        context.log(f"line {i:03d} " + "x" * 60)
    return None


def streamer(event: Any, context: InMemoryContext) -> Iterator[bytes | str]:
    yield b"a"
    yield b"bb"
    yield b""  # dropped: an empty chunk is not worth an event
    yield "ccc"  # str chunks are sent as UTF-8


async def gated(event: Any, context: InMemoryContext) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.to_thread(GATE.wait, 10)
        GATED_DONE.set()
        yield b"second"

    return chunks()


def stream_then_fail(event: Any, context: InMemoryContext) -> Iterator[bytes]:
    yield b"partial"
    raise KeyError("missing")


def build_app(code: Path) -> App:
    layer = Layer(name="deps", content_dir=code / "layer", version=3)
    cfg = FunctionConfig(
        name="hello",
        runtime="python3.12",
        handler="app.handler",
        code_dir=code / "hello",
        layers=(layer,),
        environment={"STAGE": "test"},
        timeout_s=5,
        memory_mb=256,
        ephemeral_storage_mb=1024,
        description="says hello",
        architectures=("arm64",),
    )
    hello_fn = Function(
        latest=cfg,
        versions={"1": cfg.published("1"), "2": cfg.published("2")},
        aliases={
            "live": Alias("live", "1", {"2": 0.25}, "production"),
            "canary": Alias("canary", "2"),
        },
        logical_id="HelloFunction",
        reserved_concurrency=7,
    )

    def simple(name: str, **kw: Any) -> Function:
        return Function(latest=FunctionConfig(name, "python3.12", "app.handler", code / name), **kw)

    return App.build(
        [
            hello_fn,
            simple("boom"),
            simple("chatty"),
            simple("streamer"),
            simple("gated"),
            simple("stream-then-fail"),
            simple("broken"),
            simple("tenanted", tenancy=TenancyMode.PER_TENANT),
        ]
    )


class Node:
    """One real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.invoker = BreakableInvoker(
            {
                "hello": hello,
                "boom": boom,
                "chatty": chatty,
                "streamer": streamer,
                "gated": gated,
                "stream-then-fail": stream_then_fail,
                "tenanted": hello,
            }
        )
        self.submitter = RecordingSubmitter()
        self.rng = ScriptedRandom()
        api = InvokeApi(lambda: self.app, self.invoker, self.submitter, Identity(), rng=self.rng)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            api, loop="uvloop", http="httptools", lifespan="on", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    def __enter__(self) -> Node:
        self.thread.start()
        for _ in range(500):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def client(self, **config: Any) -> LambdaClient:
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30, **config),
        )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with Node(build_app(tmp_path_factory.mktemp("code"))) as running:
        yield running


@pytest.fixture
def lam(node: Node) -> LambdaClient:
    node.submitter.requests.clear()
    node.invoker.requests.clear()
    node.rng.draws.clear()
    return node.client()


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response: Any = info.value.response
    err = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], err["Code"], err["Message"]


# -- Invoke --------------------------------------------------------------------------------------


def test_invoke_sync(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello", Payload=b'{"name": "fog"}')
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    assert "LogResult" not in resp
    doc = json.loads(resp["Payload"].read())
    assert doc["event"] == {"name": "fog"}
    assert doc["arn"] == f"{ARN}:hello"
    assert re.fullmatch(r"[0-9a-f-]{36}", resp["ResponseMetadata"]["RequestId"])


def test_invoke_unsigned(node: Node) -> None:
    lam = node.client(signature_version=UNSIGNED)
    resp = lam.invoke(FunctionName="hello", Payload=b"[1, 2]")
    assert json.loads(resp["Payload"].read())["event"] == [1, 2]


def test_empty_payload_is_an_empty_object(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello")
    assert json.loads(resp["Payload"].read())["event"] == {}


@pytest.mark.parametrize(
    ("name", "qualifier", "version", "arn"),
    [
        ("HelloFunction", None, "$LATEST", f"{ARN}:hello"),
        ("hello:1", None, "1", f"{ARN}:hello:1"),
        ("hello", "2", "2", f"{ARN}:hello:2"),
        (f"{ARN}:hello:canary", None, "2", f"{ARN}:hello:canary"),
        ("123456789012:function:hello", "$LATEST", "$LATEST", f"{ARN}:hello:$LATEST"),
    ],
)
def test_invoke_by_name_arn_and_qualifier(
    lam: LambdaClient, name: str, qualifier: str | None, version: str, arn: str
) -> None:
    kwargs: dict[str, Any] = {"Qualifier": qualifier} if qualifier else {}
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert resp["ExecutedVersion"] == version
    doc = json.loads(resp["Payload"].read())
    assert (doc["version"], doc["arn"]) == (version, arn)


def test_alias_weights(node: Node, lam: LambdaClient) -> None:
    node.rng.draws[:] = [0.1, 0.9]
    first = lam.invoke(FunctionName="hello", Qualifier="live")
    second = lam.invoke(FunctionName="hello", Qualifier="live")
    assert (first["ExecutedVersion"], second["ExecutedVersion"]) == ("2", "1")
    assert [r.invoked_arn for r in node.invoker.requests] == [f"{ARN}:hello:live"] * 2


def test_event_invocation_is_queued(node: Node, lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello", InvocationType="Event", Payload=b'{"q": 1}')
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    [queued] = node.submitter.requests
    assert (queued.payload, queued.function_name, queued.stream) == (b'{"q": 1}', "hello", False)
    assert queued.request_id == resp["ResponseMetadata"]["RequestId"]
    assert node.invoker.requests == []


def test_dry_run(node: Node, lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello", InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    assert node.invoker.requests == []
    assert node.submitter.requests == []
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName="nope", InvocationType="DryRun")
    assert error_of(info)[:2] == (404, "ResourceNotFoundException")


def test_log_tail(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello", LogType="Tail", Payload=b'{"n": 1}')
    rid = resp["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(resp["LogResult"]).decode()
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1] == 'hello called with {"n": 1}'
    assert lines[2] == f"END RequestId: {rid}"
    assert lines[3].startswith(f"REPORT RequestId: {rid}\tDuration: ")


def test_log_tail_is_the_last_4kb(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="chatty", LogType="Tail")
    log = base64.b64decode(resp["LogResult"])
    assert len(log) == 4096
    assert b"line 199 " in log
    assert b"line 000 " not in log
    assert log.decode().splitlines()[-1].startswith("REPORT RequestId: ")


def test_function_error(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="boom")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    doc = json.loads(resp["Payload"].read())
    assert doc["errorMessage"] == "kaput"
    assert doc["errorType"] == "ValueError"
    assert doc["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert isinstance(doc["stackTrace"], list)
    assert "boom" in "".join(doc["stackTrace"])


@pytest.mark.parametrize(
    ("name", "qualifier", "message"),
    [
        ("nope", None, f"Function not found: {ARN}:nope"),
        ("hello", "3", f"Function not found: {ARN}:hello:3"),
        ("hello:ghost", None, f"Function not found: {ARN}:hello:ghost"),
    ],
)
def test_not_found(lam: LambdaClient, name: str, qualifier: str | None, message: str) -> None:
    kwargs: dict[str, Any] = {"Qualifier": qualifier} if qualifier else {}
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.invoke(FunctionName=name, **kwargs)
    assert error_of(info) == (404, "ResourceNotFoundException", message)


def test_conflicting_qualifiers(lam: LambdaClient) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.invoke(FunctionName="hello:1", Qualifier="2")
    assert error_of(info)[0] == 400


def test_payload_not_json(lam: LambdaClient) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as info:
        lam.invoke(FunctionName="hello", Payload=b"not json")
    status, _, message = error_of(info)
    assert status == 400
    assert message.startswith(
        "Could not parse request body into json: Could not parse payload into json: "
    )


def test_big_integers_are_json(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="hello", Payload=b'{"n": 123456789012345678901234567890}')
    assert json.loads(resp["Payload"].read())["event"]["n"] == 123456789012345678901234567890


def test_payload_too_large(node: Node, lam: LambdaClient) -> None:
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName="hello", Payload=b'"' + b"a" * (7 * 1024 * 1024) + b'"')
    assert error_of(info) == (
        413,
        "RequestEntityTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    assert node.invoker.requests == []


def test_event_payload_too_large(lam: LambdaClient) -> None:
    payload = b'"' + b"a" * (2 * 1024 * 1024 - 2) + b'"'
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName="hello", InvocationType="Event", Payload=payload)
    assert error_of(info) == (
        413,
        "RequestEntityTooLargeException",
        "2097152 byte payload is too large for the Event invocation type (limit 1048576 bytes)",
    )


def test_client_context(lam: LambdaClient) -> None:
    text = '{"custom": {"k": "v"}}'
    resp = lam.invoke(FunctionName="hello", ClientContext=base64.b64encode(text.encode()).decode())
    assert json.loads(resp["Payload"].read())["client_context"] == text
    for bad in ("not base64!", base64.b64encode(b"[1]").decode()):
        with pytest.raises(lam.exceptions.InvalidRequestContentException) as info:
            lam.invoke(FunctionName="hello", ClientContext=bad)
        assert error_of(info)[2] == "Client context must be a valid Base64-encoded JSON object."


def test_tenant_id(lam: LambdaClient) -> None:
    resp = lam.invoke(FunctionName="tenanted", TenantId="blue")
    assert json.loads(resp["Payload"].read())["tenant"] == "blue"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="tenanted")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="hello", TenantId="blue")


def test_unexpected_failure_is_a_500_without_traceback(
    lam: LambdaClient, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="fogbank.functions.invoke_api"),
        pytest.raises(lam.exceptions.ServiceException) as info,
    ):
        lam.invoke(FunctionName="broken")
    status, code, message = error_of(info)
    rid = info.value.response["ResponseMetadata"]["RequestId"]
    assert (status, code) == (500, "ServiceException")
    assert rid in message
    assert "exploded" not in message
    assert any(rid in r.getMessage() and r.exc_info for r in caplog.records)


# -- InvokeWithResponseStream --------------------------------------------------------------------


def events(resp: Any) -> list[dict[str, Any]]:
    return list(resp["EventStream"])


def test_stream_chunks(lam: LambdaClient) -> None:
    resp = lam.invoke_with_response_stream(FunctionName="streamer")
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    assert events(resp) == [
        {"PayloadChunk": {"Payload": b"a"}},
        {"PayloadChunk": {"Payload": b"bb"}},
        {"PayloadChunk": {"Payload": b"ccc"}},
        {"InvokeComplete": {}},
    ]


def test_stream_chunks_arrive_while_the_handler_runs(lam: LambdaClient) -> None:
    GATE.clear()
    GATED_DONE.clear()
    resp = lam.invoke_with_response_stream(FunctionName="gated")
    stream = iter(resp["EventStream"])
    first = next(stream)
    # The handler is still waiting for the gate: the first chunk was not held back.
    assert not GATED_DONE.is_set()
    assert first == {"PayloadChunk": {"Payload": b"first"}}
    GATE.set()
    assert list(stream) == [{"PayloadChunk": {"Payload": b"second"}}, {"InvokeComplete": {}}]


def test_stream_of_a_plain_result(lam: LambdaClient) -> None:
    resp = lam.invoke_with_response_stream(FunctionName="hello", Qualifier="1", Payload=b"{}")
    assert resp["ExecutedVersion"] == "1"
    chunk, done = events(resp)
    assert json.loads(chunk["PayloadChunk"]["Payload"])["version"] == "1"
    assert done == {"InvokeComplete": {}}


def test_stream_function_error_and_log(lam: LambdaClient) -> None:
    resp = lam.invoke_with_response_stream(FunctionName="stream-then-fail", LogType="Tail")
    chunk, done = events(resp)
    assert chunk == {"PayloadChunk": {"Payload": b"partial"}}
    complete = done["InvokeComplete"]
    assert complete["ErrorCode"] == "KeyError"
    assert json.loads(complete["ErrorDetails"])["errorType"] == "KeyError"
    assert base64.b64decode(complete["LogResult"]).startswith(b"START RequestId: ")


def test_stream_errors_before_streaming_are_plain(lam: LambdaClient) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.invoke_with_response_stream(FunctionName="nope")
    assert error_of(info)[2] == f"Function not found: {ARN}:nope"
    resp = lam.invoke_with_response_stream(FunctionName="streamer", InvocationType="DryRun")
    assert resp["StatusCode"] == 204


# -- read-only operations ------------------------------------------------------------------------


def expected_config(version: str, arn: str) -> dict[str, Any]:
    return {
        "FunctionName": "hello",
        "FunctionArn": arn,
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "CodeSize": 0,
        "Description": "says hello",
        "Timeout": 5,
        "MemorySize": 256,
        "Version": version,
        "Environment": {"Variables": {"STAGE": "test"}},
        "TracingConfig": {"Mode": "PassThrough"},
        "Layers": [{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:3", "CodeSize": 0}],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["arm64"],
        "EphemeralStorage": {"Size": 1024},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/hello"},
    }


def strip(doc: Any) -> dict[str, Any]:
    """A configuration without the values that are not fixed (checked on their own)."""
    out = dict(doc)
    out.pop("ResponseMetadata", None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", out.pop("LastModified"))
    assert re.fullmatch(r"[0-9a-f-]{36}", out.pop("RevisionId"))
    return out


def test_list_functions(node: Node, lam: LambdaClient) -> None:
    resp = lam.list_functions()
    names = [f["FunctionName"] for f in resp["Functions"]]
    assert names == sorted(node.app.functions)
    assert "NextMarker" not in resp
    [hello_doc] = [f for f in resp["Functions"] if f["FunctionName"] == "hello"]
    assert strip(hello_doc) == expected_config("$LATEST", f"{ARN}:hello")
    [tenanted] = [f for f in resp["Functions"] if f["FunctionName"] == "tenanted"]
    assert tenanted["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    assert "Environment" not in tenanted
    assert "Layers" not in tenanted


def test_list_functions_pages(node: Node, lam: LambdaClient) -> None:
    first = lam.list_functions(MaxItems=3)
    assert len(first["Functions"]) == 3
    second = lam.list_functions(MaxItems=3, Marker=first["NextMarker"])
    assert second["Functions"][0]["FunctionName"] not in {
        f["FunctionName"] for f in first["Functions"]
    }
    pages = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
    names = [f["FunctionName"] for page in pages for f in page["Functions"]]
    assert names == sorted(node.app.functions)


def test_list_functions_all_versions(lam: LambdaClient) -> None:
    resp = lam.list_functions(FunctionVersion="ALL")
    hello_arns = [f["FunctionArn"] for f in resp["Functions"] if f["FunctionName"] == "hello"]
    assert hello_arns == [f"{ARN}:hello", f"{ARN}:hello:1", f"{ARN}:hello:2"]


def test_get_function(node: Node, lam: LambdaClient) -> None:
    resp = lam.get_function(FunctionName="HelloFunction")
    code = node.app.functions["hello"].latest.code_dir
    assert strip(resp["Configuration"]) == expected_config("$LATEST", f"{ARN}:hello")
    assert resp["Code"] == {"RepositoryType": "Local", "Location": code.absolute().as_uri()}
    assert resp["Concurrency"] == {"ReservedConcurrentExecutions": 7}
    assert "Concurrency" not in lam.get_function(FunctionName="boom")


def test_get_function_configuration(node: Node, lam: LambdaClient) -> None:
    one = lam.get_function_configuration(FunctionName="hello", Qualifier="1")
    assert strip(one) == expected_config("1", f"{ARN}:hello:1")
    node.rng.draws[:] = [0.0]  # would pick version 2 if this used the weights
    live = lam.get_function_configuration(FunctionName=f"{ARN}:hello:live")
    assert (live["Version"], live["FunctionArn"]) == ("1", f"{ARN}:hello:live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.get_function_configuration(FunctionName="hello", Qualifier="9")
    assert error_of(info)[2] == f"Function not found: {ARN}:hello:9"


def test_aliases(lam: LambdaClient) -> None:
    aliases = lam.list_aliases(FunctionName="hello")["Aliases"]
    by_name = {a["Name"]: a for a in aliases}
    assert [a["Name"] for a in aliases] == ["canary", "live"]
    live: dict[str, Any] = dict(by_name["live"])
    assert re.fullmatch(r"[0-9a-f-]{36}", live.pop("RevisionId"))
    assert live == {
        "AliasArn": f"{ARN}:hello:live",
        "Name": "live",
        "FunctionVersion": "1",
        "Description": "production",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}},
    }
    assert "RoutingConfig" not in by_name["canary"]
    got = dict(lam.get_alias(FunctionName="hello", Name="live"))
    got.pop("ResponseMetadata")
    assert got == by_name["live"]
    only_v2 = lam.list_aliases(FunctionName="hello", FunctionVersion="2")["Aliases"]
    assert [a["Name"] for a in only_v2] == ["canary"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.get_alias(FunctionName="hello", Name="ghost")
    assert error_of(info)[2] == f"Cannot find alias arn: {ARN}:hello:ghost"


def test_versions(lam: LambdaClient) -> None:
    versions = lam.list_versions_by_function(FunctionName="hello")["Versions"]
    assert [(v["Version"], v["FunctionArn"]) for v in versions] == [
        ("$LATEST", f"{ARN}:hello:$LATEST"),
        ("1", f"{ARN}:hello:1"),
        ("2", f"{ARN}:hello:2"),
    ]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_versions_by_function(FunctionName="nope")


# -- raw HTTP ------------------------------------------------------------------------------------


def test_unknown_route(node: Node) -> None:
    with httpx.Client(base_url=node.url) as http:
        for method, path in [
            ("GET", "/"),
            ("GET", "/2015-03-31/functions/hello/invocations"),
            ("POST", "/2015-03-31/functions/hello"),
            ("DELETE", "/2015-03-31/functions/hello"),
            ("GET", "/2015-03-31/functions/hello/policy"),
        ]:
            resp = http.request(method, path)
            assert resp.status_code == 404, path
            assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
            assert resp.headers["content-type"] == "application/json"
            assert re.fullmatch(r"[0-9a-f-]{36}", resp.headers["x-amzn-RequestId"])
            assert resp.json() == {"message": f"Unknown operation: {method} {path}"}


def test_invoke_response_headers(node: Node) -> None:
    with httpx.Client(base_url=node.url) as http:
        resp = http.post("/2015-03-31/functions/hello%3A1/invocations", content=b"{}")
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        assert resp.headers["x-amz-executed-version"] == "1"
        assert "x-amz-function-error" not in resp.headers
        assert resp.headers["content-length"] == str(len(resp.content))
        error = http.post("/2015-03-31/functions/boom/invocations")
        assert error.headers["x-amz-function-error"] == "Unhandled"


def test_request_validation(node: Node) -> None:
    with httpx.Client(base_url=node.url) as http:
        url = "/2015-03-31/functions/hello/invocations"
        multipart = http.post(url, files={"f": b"{}"})
        assert multipart.status_code == 415
        assert multipart.headers["x-amzn-ErrorType"] == "UnsupportedMediaTypeException"
        form = http.post(url, content=b"{}", headers={"content-type": "text/plain"})
        assert form.status_code == 200
        bad_type = http.post(url, headers={"X-Amz-Invocation-Type": "Later"})
        assert bad_type.status_code == 400
        assert bad_type.headers["x-amzn-ErrorType"] == "ValidationException"
        assert bad_type.json()["Type"] == "User"


# -- the in-memory invoker itself ----------------------------------------------------------------


def test_in_memory_invoker_shapes(node: Node) -> None:
    cfg = node.app.functions["boom"].latest

    def request(payload: bytes = b"{}") -> InvokeRequest:
        return InvokeRequest("boom", cfg, payload, "rid-1", f"{ARN}:boom")

    async def scenario() -> list[InvokeResult]:
        invoker = InMemoryInvoker()
        invoker.register("boom", lambda event, ctx: {1, 2})
        marshal = await invoker.invoke(request())

        async def coro(event: Any, ctx: InMemoryContext) -> Any:
            return event["x"]

        invoker.register("boom", coro)
        awaited = await invoker.invoke(request(b'{"x": 5}'))
        invoker.register("boom", lambda event, ctx: iter([b"a", "b"]))
        buffered = await invoker.invoke(request())
        return [marshal, awaited, buffered]

    marshal, awaited, buffered = asyncio.run(scenario())
    assert marshal.error_type == "Runtime.MarshalError"
    assert marshal.function_error == "Unhandled"
    assert json.loads(marshal.payload)["errorType"] == "Runtime.MarshalError"
    assert (awaited.payload, awaited.function_error) == (b"5", None)
    assert (buffered.payload, buffered.streamed) == (b"ab", False)
