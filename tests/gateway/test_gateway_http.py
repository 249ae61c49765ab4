"""The data plane over real HTTP: routing, events, responses and API Gateway's errors."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from fogbank.model import (
    Api,
    ApiKind,
    App,
    Cors,
    Function,
    FunctionConfig,
    FunctionUrl,
    Integration,
    IntegrationResponse,
    IntegrationType,
    Route,
    Stage,
)

from .conftest import NodeThread, node_config, write_code

HANDLERS = """
import base64, json, os, time

def echo(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}

def v2(event, context):
    if event.get("rawPath", "").endswith("/infer"):
        return {"inferred": True, "path": event["rawPath"]}
    return {"statusCode": 201, "cookies": ["a=1", "b=2; Path=/"],
            "headers": {"x-handler": "v2"}, "body": json.dumps(event)}

def fail(event, context):
    raise RuntimeError("boom")

def garbage(event, context):
    return {"statusCode": 200, "unexpected": "key"}

def slow(event, context):
    time.sleep(3)
    return {"statusCode": 200, "body": "late"}

def png(event, context):
    return {"statusCode": 200, "headers": {"content-type": "image/png"},
            "body": base64.b64encode(b"\\x89PNG\\r\\n\\x1a\\nbinary").decode(), "isBase64Encoded": True}

def stream(event, context):
    flag = os.environ["GO_FILE"]
    def chunks():
        yield {"statusCode": 200, "headers": {"content-type": "text/plain", "x-streamed": "yes"}}
        yield "first;"
        deadline = time.time() + 5
        while not os.path.exists(flag) and time.time() < deadline:
            time.sleep(0.01)
        yield "second:" + ("released" if os.path.exists(flag) else "timed-out")
    return chunks()
"""


def _fn(code: Path, name: str, handler: str, **env: str) -> Function:
    return Function(
        latest=FunctionConfig(
            name=name,
            runtime="python3.12",
            handler=f"app.{handler}",
            code_dir=code,
            environment=env,
            timeout_s=10,
        )
    )


def _lambda(name: str, version: str = "1.0", timeout_ms: int = 29_000) -> Integration:
    return Integration(
        IntegrationType.AWS_PROXY,
        function_name=name,
        payload_format_version=version,
        timeout_ms=timeout_ms,
    )


def build_app(root: Path, upstream: str = "http://127.0.0.1:9") -> App:
    code = write_code(root, "code", {"app.py": HANDLERS})
    functions = [
        _fn(code, "echo", "echo"),
        _fn(code, "v2", "v2"),
        _fn(code, "fail", "fail"),
        _fn(code, "garbage", "garbage"),
        _fn(code, "slow", "slow"),
        _fn(code, "png", "png"),
        _fn(code, "stream", "stream", GO_FILE=str(root / "go")),
    ]
    mock = Integration(
        IntegrationType.MOCK,
        request_templates={"application/json": '{"statusCode": 200}'},
        responses=(
            IntegrationResponse(
                status_code="200",
                response_parameters={"method.response.header.X-Mocked": "'yes'"},
                response_templates={"application/json": '{"mocked": true}'},
            ),
        ),
    )
    proxy = Integration(
        IntegrationType.HTTP_PROXY,
        uri="${stageVariables.upstream}/echo/{proxy}",
        request_parameters={
            "integration.request.header.X-Forwarded-Key": "method.request.header.X-Key"
        },
        timeout_ms=2000,
    )
    rest = Api(
        api_id="rest000001",
        name="shop",
        kind=ApiKind.REST,
        routes=(
            Route("GET", "/items/{id}", _lambda("echo")),
            Route("ANY", "/echo/{proxy+}", _lambda("echo")),
            Route("GET", "/fail", _lambda("fail")),
            Route("GET", "/garbage", _lambda("garbage")),
            Route("GET", "/slow", _lambda("slow", timeout_ms=1000)),
            Route("GET", "/png", _lambda("png")),
            Route("GET", "/mock", mock),
            Route("ANY", "/upstream/{proxy+}", proxy),
            Route(
                "GET",
                "/stream",
                Integration(
                    IntegrationType.AWS_PROXY,
                    function_name="stream",
                    response_transfer_mode="STREAM",
                ),
            ),
        ),
        stages={"Prod": Stage("Prod", {"upstream": upstream, "colour": "blue"})},
        binary_media_types=("image/png",),
    )
    http = Api(
        api_id="http000001",
        name="shop-http",
        kind=ApiKind.HTTP,
        routes=(
            Route("GET", "/v2/{name}", _lambda("v2", "2.0", 30_000)),
            Route("GET", "/v2/infer", _lambda("v2", "2.0", 30_000)),
            Route("GET", "/v1echo", _lambda("echo", "1.0", 30_000)),
            Route("GET", "/h/fail", _lambda("fail", "2.0", 30_000)),
            Route("GET", "/h/slow", _lambda("slow", "2.0", 1000)),
        ),
        stages={"$default": Stage("$default")},
        cors=Cors(
            allow_origins=("https://shop.example",),
            allow_methods=("GET", "POST"),
            allow_headers=("content-type",),
            max_age=600,
        ),
    )
    url = FunctionUrl(function_name="stream", url_id="s" * 32, invoke_mode="RESPONSE_STREAM")
    return App.build(functions, apis=[rest, http], function_urls=[url])


@pytest.fixture
def gw(root: Path) -> Iterator[NodeThread]:
    thread = NodeThread(node_config(root), build_app(root)).start()
    yield thread
    thread.stop()


def _base(node: NodeThread) -> str:
    assert node.node is not None
    return node.node.url


def test_rest_event_and_response(gw: NodeThread) -> None:
    resp = httpx.get(
        _base(gw) + "/Prod/items/42?tag=a&tag=b&one=1",
        headers=[("X-Multi", "first"), ("X-Multi", "second"), ("User-Agent", "pytest")],
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-requestid"]
    event = resp.json()
    APIGatewayProxyEventModel.model_validate(event)
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"tag": "b", "one": "1"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "one": ["1"]}
    assert event["multiValueHeaders"]["X-Multi"] == ["first", "second"]
    assert event["headers"]["User-Agent"] == "pytest"
    assert event["stageVariables"] == {"upstream": "http://127.0.0.1:9", "colour": "blue"}
    ctx = event["requestContext"]
    assert ctx["stage"] == "Prod"
    assert ctx["path"] == "/Prod/items/42"
    assert ctx["resourcePath"] == "/items/{id}"
    assert ctx["requestId"] == resp.headers["x-amzn-requestid"]
    assert ctx["apiId"] == "rest000001"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_rest_routes_at_root_and_on_api_host(gw: NodeThread) -> None:
    root_resp = httpx.get(_base(gw) + "/items/7")
    assert root_resp.status_code == 200
    assert root_resp.json()["requestContext"]["stage"] == "Prod"
    assert root_resp.json()["pathParameters"] == {"id": "7"}
    hosted = httpx.get(
        _base(gw) + "/Prod/items/8", headers={"host": "rest000001.execute-api.localhost"}
    )
    assert hosted.json()["requestContext"]["domainName"] == "rest000001.execute-api.localhost"
    greedy = httpx.post(_base(gw) + "/Prod/echo/a/b/c", content=b'{"k": 1}')
    event = greedy.json()
    assert event["pathParameters"] == {"proxy": "a/b/c"}
    assert event["body"] == '{"k": 1}'


def test_http_api_event_cookies_and_inference(gw: NodeThread) -> None:
    resp = httpx.get(
        _base(gw) + "/v2/ada?x=1&x=2",
        headers=[("Cookie", "s=1; t=2"), ("X-Multi", "a"), ("X-Multi", "b")],
    )
    assert resp.status_code == 201
    assert resp.headers.get_list("set-cookie") == ["a=1", "b=2; Path=/"]
    assert resp.headers["x-handler"] == "v2"
    assert resp.headers["apigw-requestid"]
    event = resp.json()
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v2/{name}"
    assert event["rawPath"] == "/v2/ada"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-multi"] == "a,b"
    assert event["pathParameters"] == {"name": "ada"}
    assert event["requestContext"]["http"]["method"] == "GET"
    inferred = httpx.get(_base(gw) + "/v2/infer")
    assert inferred.status_code == 200
    assert inferred.headers["content-type"] == "application/json"
    assert inferred.json() == {"inferred": True, "path": "/v2/infer"}
    v1 = httpx.get(_base(gw) + "/v1echo").json()
    assert v1["version"] == "1.0"


def test_unmatched_routes(gw: NodeThread, root: Path) -> None:
    resp = httpx.get(_base(gw) + "/Prod/nothing")
    assert resp.status_code == 403
    assert resp.json() == {"message": "Missing Authentication Token"}
    assert resp.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    http_only = httpx.get(_base(gw) + "/x", headers={"host": "http000001.execute-api.localhost"})
    assert http_only.status_code == 404
    assert http_only.json() == {"message": "Not Found"}


def test_function_errors_and_bad_output(gw: NodeThread) -> None:
    failed = httpx.get(_base(gw) + "/Prod/fail")
    assert failed.status_code == 502
    assert failed.json() == {"message": "Internal server error"}
    garbage = httpx.get(_base(gw) + "/Prod/garbage")
    assert garbage.status_code == 502
    assert garbage.json() == {"message": "Internal server error"}
    http_failed = httpx.get(_base(gw) + "/h/fail")
    assert http_failed.status_code == 500
    assert http_failed.json() == {"message": "Internal Server Error"}


def test_integration_timeouts(gw: NodeThread) -> None:
    rest = httpx.get(_base(gw) + "/Prod/slow", timeout=10)
    assert rest.status_code == 504
    assert rest.json() == {"message": "Endpoint request timed out"}
    http = httpx.get(_base(gw) + "/h/slow", timeout=10)
    assert http.status_code == 503
    assert http.json() == {"message": "Service Unavailable"}
    # The node keeps serving while the slow invocations finish in the background.
    assert httpx.get(_base(gw) + "/Prod/items/1").status_code == 200


def test_binary_response_and_request(gw: NodeThread) -> None:
    png = httpx.get(_base(gw) + "/Prod/png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content == b"\x89PNG\r\n\x1a\nbinary"
    sent = httpx.post(
        _base(gw) + "/Prod/echo/upload",
        content=b"\x00\xffraw",
        headers={"content-type": "image/png"},
    ).json()
    assert sent["isBase64Encoded"] is True
    assert base64.b64decode(sent["body"]) == b"\x00\xffraw"


def test_body_limit(gw: NodeThread) -> None:
    resp = httpx.post(_base(gw) + "/Prod/echo/big", content=b"x" * (10 * 1024 * 1024 + 1))
    assert resp.status_code == 413
    assert resp.json() == {"message": "Request Too Long"}
    assert httpx.get(_base(gw) + "/Prod/items/1").status_code == 200


def test_cors_preflight_and_headers(gw: NodeThread) -> None:
    pre = httpx.options(
        _base(gw) + "/v2/ada",
        headers={"origin": "https://shop.example", "access-control-request-method": "GET"},
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example"
    assert pre.headers["access-control-allow-methods"] == "GET,POST"
    assert pre.headers["access-control-allow-headers"] == "content-type"
    assert pre.headers["access-control-max-age"] == "600"
    actual = httpx.get(_base(gw) + "/v2/ada", headers={"origin": "https://shop.example"})
    assert actual.headers["access-control-allow-origin"] == "https://shop.example"
    other = httpx.get(_base(gw) + "/v2/ada", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_mock_integration(gw: NodeThread) -> None:
    resp = httpx.get(_base(gw) + "/Prod/mock")
    assert resp.status_code == 200
    assert resp.headers["x-mocked"] == "yes"
    assert resp.json() == {"mocked": True}


class _Upstream:
    """A tiny real HTTP server standing in for a service behind HTTP_PROXY."""

    def __init__(self) -> None:
        import uvicorn

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
            doc = {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body.decode(),
            }
            await send(
                {
                    "type": "http.response.start",
                    "status": 207,
                    "headers": [(b"content-type", b"application/json"), (b"x-up", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(doc).encode()})

        self.server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_http_proxy_with_stage_variables(root: Path) -> None:
    with _Upstream() as upstream:
        node = NodeThread(node_config(root), build_app(root, upstream)).start()
        try:
            resp = httpx.post(
                _base(node) + "/Prod/upstream/a/b?q=1",
                content=b"payload",
                headers={"x-key": "k-123"},
            )
        finally:
            node.stop()
    assert resp.status_code == 207
    assert resp.headers["x-up"] == "1"
    doc = resp.json()
    assert doc["method"] == "POST"
    assert doc["path"] == "/echo/a/b"
    assert doc["query"] == "q=1"
    assert doc["body"] == "payload"
    assert doc["headers"]["x-forwarded-key"] == "k-123"


def test_http_proxy_unreachable(gw: NodeThread) -> None:
    resp = httpx.get(_base(gw) + "/Prod/upstream/x")
    assert resp.status_code == 502
    assert resp.json() == {"message": "Internal server error"}


@pytest.mark.parametrize("target", ["url", "rest"])
def test_streaming_sends_chunks_as_produced(gw: NodeThread, root: Path, target: str) -> None:
    if target == "url":
        url, headers = _base(gw) + "/", {"host": "s" * 32 + ".lambda-url.us-east-1.localhost"}
    else:
        url, headers = _base(gw) + "/Prod/stream", {}
    (root / "go").unlink(missing_ok=True)
    with httpx.stream("GET", url, headers=headers, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-streamed"] == "yes"
        assert resp.headers["content-type"] == "text/plain"
        chunks = resp.iter_raw()
        first = next(chunks)
        assert first == b"first;"
        # The handler is now waiting for this file: the first chunk came before the rest existed.
        (root / "go").touch()
        rest = b"".join(chunks)
    assert rest == b"second:released"
