"""Proxy results to HTTP responses, and whole round trips through Mangum and a FastAPI app."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Annotated, Any, cast

import pytest
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from mangum import Mangum
from mangum.types import LambdaContext

from fogbank.gateway._errors import BadProxyOutput
from fogbank.gateway._responses import http_response, rest_response
from fogbank.gateway._types import HttpResponse
from fogbank.model import ApiKind
from tests.gateway.test_events import http, http_v1, make_match, make_request, rest, url, url_match


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def headers_of(response: HttpResponse, name: str) -> list[str]:
    return [value for key, value in response.headers if key == name]


# --- payload 1.0 -------------------------------------------------------------------------------


def test_rest_minimal_result_gets_json_content_type() -> None:
    response = rest_response(dumps({"statusCode": 200, "body": "hi"}))
    assert (response.status, response.body) == (200, b"hi")
    assert response.headers == [("content-type", "application/json")]
    empty = rest_response(dumps({"statusCode": 204}))
    assert (empty.status, empty.body, empty.headers) == (
        204,
        b"",
        [("content-type", "application/json")],
    )


def test_http_api_payload_1_default_content_type_is_text() -> None:
    response = rest_response(dumps({"statusCode": 200, "body": "hi"}), kind=ApiKind.HTTP)
    assert response.headers == [("content-type", "text/plain; charset=utf-8")]
    assert rest_response(dumps({"statusCode": 204}), kind=ApiKind.HTTP).headers == []


@pytest.mark.parametrize(("code", "status"), [(201, 201), ("201", 201), (404.0, 404), ("599", 599)])
def test_status_code_forms_aws_accepts(code: Any, status: int) -> None:
    assert rest_response(dumps({"statusCode": code})).status == status
    assert http_response(dumps({"statusCode": code})).status == status


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"body": "no status"},
        {"statusCode": "abc"},
        {"statusCode": "\uff12\uff10\uff11"},  # full-width digits
        {"statusCode": True},
        {"statusCode": None},
        {"statusCode": 99},
        {"statusCode": 600},
        {"statusCode": 200.5},
        {"statusCode": 200, "extra": 1},
        {"statusCode": 200, "cookies": ["a=1"]},  # a 2.0 key is unknown to 1.0
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "body": 5},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"x": {"a": 1}}},
        {"statusCode": 200, "headers": {"x": [1]}},
        {"statusCode": 200, "headers": {"bad name": "1"}},
        {"statusCode": 200, "headers": {"x": "a\r\nInjected: 1"}},
        {"statusCode": 200, "multiValueHeaders": {"x": "not a list"}},
        {"statusCode": 200, "multiValueHeaders": []},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
        {"statusCode": 200, "body": "aGk", "isBase64Encoded": True},  # missing padding
        {"statusCode": 200, "isBase64Encoded": "yes"},
        "a bare string",
        ["statusCode", 200],
        200,
        None,
    ],
)
def test_malformed_payload_1_results(result: Any) -> None:
    with pytest.raises(BadProxyOutput):
        rest_response(dumps(result))


@pytest.mark.parametrize("payload", [b"", b"{", b"{'statusCode': 200}", b"not json"])
def test_invalid_json_is_bad_output(payload: bytes) -> None:
    with pytest.raises(BadProxyOutput, match="not valid JSON"):
        rest_response(payload)
    with pytest.raises(BadProxyOutput, match="not valid JSON"):
        http_response(payload)


def test_both_header_maps_merge() -> None:
    result = {
        "statusCode": 200,
        "headers": {"X-A": "1", "Set-Cookie": "a=1", "X-Only": "single"},
        "multiValueHeaders": {"x-a": ["2", "1"], "Set-Cookie": ["b=2"], "X-List": ["p", "q"]},
        "body": "ok",
    }
    response = rest_response(dumps(result))
    # A pair given in both maps appears once; other values of either map are all kept.
    assert headers_of(response, "x-a") == ["2", "1"]
    assert headers_of(response, "set-cookie") == ["b=2", "a=1"]
    assert headers_of(response, "x-only") == ["single"]
    assert headers_of(response, "x-list") == ["p", "q"]


def test_header_values_are_stringified_and_nulls_dropped() -> None:
    result = {
        "statusCode": 200,
        "headers": {
            "X-Int": 1,
            "X-Bool": True,
            "X-Float": 1.5,
            "X-None": None,
            "Content-Type": None,
        },
        "multiValueHeaders": {"X-Multi": [2, False, None]},
    }
    response = rest_response(dumps(result))
    assert response.headers == [
        ("x-int", "1"),
        ("x-bool", "true"),
        ("x-float", "1.5"),
        ("x-multi", "2"),
        ("x-multi", "false"),
    ]  # and no default content-type: a null Content-Type tells the gateway to add none


def test_non_ascii_header_values_go_out_as_utf8() -> None:
    response = rest_response(dumps({"statusCode": 200, "headers": {"X-Name": "λ"}}))
    assert headers_of(response, "x-name")[0].encode("latin-1") == "λ".encode()


def test_base64_body_is_decoded() -> None:
    blob = bytes(range(256))
    encoded = base64.b64encode(blob).decode()
    for flag in (True, "true", "TRUE"):
        result = {"statusCode": 200, "body": encoded, "isBase64Encoded": flag}
        assert rest_response(dumps(result)).body == blob
    wrapped = base64.encodebytes(blob).decode()  # line breaks every 76 characters
    assert (
        rest_response(dumps({"statusCode": 200, "body": wrapped, "isBase64Encoded": True})).body
        == blob
    )
    plain = {"statusCode": 200, "body": encoded, "isBase64Encoded": "false"}
    assert rest_response(dumps(plain)).body == encoded.encode()


def test_big_integers_and_unicode_bodies() -> None:
    assert http_response(b'{"id": 123456789012345678901234567890}').body == (
        b'{"id": 123456789012345678901234567890}'
    )
    assert rest_response(dumps({"statusCode": 200, "body": "café ☕"})).body == "café ☕".encode()


# --- payload 2.0 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        (b'"Hello from Lambda!"', b"Hello from Lambda!"),  # AWS's documented example
        (b"42", b"42"),
        (b"[1, 2, 3]", b"[1, 2, 3]"),
        (b'{ "message": "Hello from Lambda!" }', b'{ "message": "Hello from Lambda!" }'),
        (b"true", b"true"),
        (b"null", b"null"),
        (b'{"statuscode": 201}', b'{"statuscode": 201}'),  # the key is case-sensitive
    ],
)
def test_http_result_without_status_code_is_the_body(payload: bytes, body: bytes) -> None:
    response = http_response(payload)
    assert (response.status, response.body) == (200, body)
    assert response.headers == [("content-type", "application/json")]


def test_http_structured_result_with_cookies() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/html", "X-Joined": "a,b"},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "<p>hi</p>",
        "multiValueHeaders": {"X-Ignored": ["not in 2.0"]},
        "somethingElse": True,
    }
    response = http_response(dumps(result))
    assert response.status == 201
    assert response.headers == [
        ("content-type", "text/html"),
        ("x-joined", "a,b"),
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2; HttpOnly"),
    ]
    assert response.body == b"<p>hi</p>"


def test_http_structured_result_defaults_and_coercions() -> None:
    plain = http_response(dumps({"statusCode": 200, "body": "hi"}))
    assert plain.headers == [("content-type", "text/plain; charset=utf-8")]
    assert http_response(dumps({"statusCode": 204})).headers == []
    as_json = http_response(dumps({"statusCode": 200, "body": {"a": 1}}))
    assert as_json.body == b'{"a":1}'
    blob = b"\x00\xffbinary"
    encoded = {"statusCode": 200, "body": base64.b64encode(blob).decode(), "isBase64Encoded": True}
    assert http_response(dumps(encoded)).body == blob


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "abc"},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "cookies": [1]},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"statusCode": 200, "body": {"a": 1}, "isBase64Encoded": True},
        {"statusCode": 200, "headers": "x"},
    ],
)
def test_malformed_payload_2_results(result: Any) -> None:
    with pytest.raises(BadProxyOutput):
        http_response(dumps(result))


# --- round trips through Mangum and FastAPI ----------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(
        item_id: str, request: Request, q: Annotated[list[str] | None, Query()] = None
    ) -> dict[str, Any]:
        return {
            "id": item_id,
            "q": q or [],
            "multi": request.headers.get("x-multi"),
            "cookies": dict(request.cookies),
            "scheme": request.url.scheme,
        }

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"json": await request.json(), "type": request.headers["content-type"]}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        data = await request.body()
        return {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}

    @app.get("/image")
    def image() -> Response:
        return Response(content=PNG, media_type="image/png")

    @app.get("/cookies")
    def cookies() -> Response:
        response = JSONResponse({"ok": True})
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    @app.get("/files/{path:path}")
    def files(path: str) -> dict[str, str]:
        return {"path": path}

    return app


HANDLER = Mangum(make_app(), lifespan="off")


@pytest.fixture(autouse=True)
def event_loop_for_mangum() -> Iterator[None]:
    """Mangum runs the app on `asyncio.get_event_loop()`, as a fresh Lambda process has one; a
    test run that already closed its loops (asyncio.run) must hand it a new one."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


CONTEXT = cast(
    LambdaContext,
    SimpleNamespace(
        function_name="fn",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:fn",
        memory_limit_in_mb=128,
        aws_request_id="req",
        log_group_name="/aws/lambda/fn",
        log_stream_name="stream",
        identity=None,
        client_context=None,
    ),
)

Flavour = tuple[Callable[..., dict[str, Any]], Callable[[bytes], HttpResponse]]


def rest_flavour(
    method: str, path: str, binary: tuple[str, ...] = (), **kw: Any
) -> tuple[dict[str, Any], Callable[[bytes], HttpResponse]]:
    route = "/{proxy+}"
    event = rest(
        make_request(method, f"/prod{path}", **kw),
        make_match(ApiKind.REST, route, method="ANY", binary=binary),
    )
    return event, rest_response


def http_flavour(
    method: str, path: str, binary: tuple[str, ...] = (), **kw: Any
) -> tuple[dict[str, Any], Callable[[bytes], HttpResponse]]:
    match = make_match(
        ApiKind.HTTP, "$default", method="ANY", stage="$default", stage_in_path=False
    )
    return http(make_request(method, path, **kw), match), http_response


def http_v1_flavour(
    method: str, path: str, binary: tuple[str, ...] = (), **kw: Any
) -> tuple[dict[str, Any], Callable[[bytes], HttpResponse]]:
    match = make_match(
        ApiKind.HTTP, "/{proxy+}", method="ANY", stage="$default", stage_in_path=False
    )
    return http_v1(make_request(method, path, **kw), match), lambda p: rest_response(
        p, kind=ApiKind.HTTP
    )


def url_flavour(
    method: str, path: str, binary: tuple[str, ...] = (), **kw: Any
) -> tuple[dict[str, Any], Callable[[bytes], HttpResponse]]:
    return url(make_request(method, path, **kw), url_match()), http_response


FLAVOURS = pytest.mark.parametrize(
    "flavour",
    [rest_flavour, http_flavour, http_v1_flavour, url_flavour],
    ids=["rest", "http", "http-1.0", "url"],
)


def round_trip(event: dict[str, Any], mapper: Callable[[bytes], HttpResponse]) -> HttpResponse:
    """Run the app under Mangum, then map its result as the gateway would."""
    return mapper(json.dumps(HANDLER(event, CONTEXT)).encode())


@FLAVOURS
def test_path_query_headers_and_cookies_reach_the_app(flavour: Any) -> None:
    headers = (("x-multi", "a"), ("x-multi", "b"), ("cookie", "s=1; t=2"))
    event, mapper = flavour("GET", "/items/a%20b", query=b"q=1&q=2&q=x+y", headers=headers)
    response = round_trip(event, mapper)
    assert response.status == 200
    assert headers_of(response, "content-type") == ["application/json"]
    seen = json.loads(response.body)
    assert seen["id"] == "a b"
    assert seen["q"] == ["1", "2", "x y"]
    assert seen["cookies"] == {"s": "1", "t": "2"}
    assert seen["multi"] in ("a, b", "a,b")  # Mangum joins 1.0 lists with ", "; 2.0 arrives joined
    assert seen["scheme"] == "http"  # from X-Forwarded-Proto


@FLAVOURS
def test_json_body_reaches_the_app(flavour: Any) -> None:
    body = json.dumps({"name": "café", "n": [1, 2]}).encode()
    event, mapper = flavour(
        "POST", "/echo", headers=(("content-type", "application/json"),), body=body
    )
    response = round_trip(event, mapper)
    assert json.loads(response.body) == {
        "json": {"name": "café", "n": [1, 2]},
        "type": "application/json",
    }


@FLAVOURS
def test_binary_upload_and_download(flavour: Any) -> None:
    headers = (("content-type", "image/png"),)
    event, mapper = flavour("POST", "/upload", binary=("image/*",), headers=headers, body=PNG)
    assert event["isBase64Encoded"] is True
    uploaded = json.loads(round_trip(event, mapper).body)
    assert uploaded == {"size": len(PNG), "sha": hashlib.sha256(PNG).hexdigest()}
    event, mapper = flavour("GET", "/image")
    response = round_trip(event, mapper)
    assert (response.status, response.body) == (200, PNG)
    assert headers_of(response, "content-type") == ["image/png"]


@FLAVOURS
def test_cookies_set_by_the_app(flavour: Any) -> None:
    event, mapper = flavour("GET", "/cookies")
    response = round_trip(event, mapper)
    cookies = headers_of(response, "set-cookie")
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]


@FLAVOURS
def test_greedy_path_and_empty_body(flavour: Any) -> None:
    event, mapper = flavour("GET", "/files/docs/read%20me.txt")
    assert event.get("body") is None
    assert json.loads(round_trip(event, mapper).body) == {"path": "docs/read me.txt"}
