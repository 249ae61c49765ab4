"""Unmodified web frameworks behind real SAM templates, reached over real HTTP with httpx.

FastAPI behind Mangum, and Powertools' REST and HTTP API resolvers, each behind a SAM `Api`
event (REST API, payload 1.0) and an `HttpApi` event (HTTP API, payload 2.0). Each API is
reached on its own host (`{apiId}.execute-api.localhost`), REST with its stage in the path, as
on AWS. Every event the gateway builds is also checked against Powertools' models (conftest).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from .conftest import EventLog, Served, scratch_dir, serving, write_app_template

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.11, CodeUri: src/, Timeout: 30}
Resources:
  FastRestApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      BinaryMediaTypes: ['image~1png']
  PowertoolsHttpApi:
    Type: AWS::Serverless::HttpApi
  FastApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: fogbank_fastapi_app.handler
      Events:
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref FastRestApi, Path: '/{proxy+}', Method: any}
        Http:
          Type: HttpApi
          Properties: {Path: '/{proxy+}', Method: any}
  PowertoolsRestFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: fogbank_powertools_app.rest_handler
      Events:
        Rest:
          Type: Api
          Properties: {Path: '/{proxy+}', Method: any}
  PowertoolsHttpFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: fogbank_powertools_app.http_handler
      Events:
        Http:
          Type: HttpApi
          Properties: {ApiId: !Ref PowertoolsHttpApi, Path: '/{proxy+}', Method: any}
"""

FASTAPI_APIS = {"rest": "FastRestApi", "http": "ServerlessHttpApi"}
POWERTOOLS_APIS = {"rest": "ServerlessRestApi", "http": "PowertoolsHttpApi"}
TODO_ORIGIN = "https://todo.example"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00binary"
"""What `fogbank_fastapi_app` serves at /logo.png."""
POWERTOOLS_CORS = [
    ("access-control-allow-credentials", "true"),
    (
        "access-control-allow-headers",
        "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key",
    ),
    ("access-control-allow-origin", TODO_ORIGIN),
    ("access-control-expose-headers", "x-todo-count"),
    ("access-control-max-age", "300"),
]


@dataclass(frozen=True)
class Target:
    """One API of the template, as a client sees it."""

    kind: str
    """`rest` (payload 1.0) or `http` (payload 2.0)."""
    client: httpx.Client

    @property
    def request_id_header(self) -> str:
        return "x-amzn-requestid" if self.kind == "rest" else "apigw-requestid"

    @property
    def builder(self) -> str:
        """The event builder the gateway uses for this API."""
        return "rest_event" if self.kind == "rest" else "http_event"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with scratch_dir("fogbank-clients-") as directory:
        template = write_app_template(directory, TEMPLATE)
        with serving(template, directory / "state") as node:
            yield node


def _target(served: Served, kind: str, logical_id: str) -> Iterator[Target]:
    stage = "/Prod" if kind == "rest" else ""
    with httpx.Client(
        base_url=served.base + stage, headers={"host": served.api_host(logical_id)}, timeout=30
    ) as client:
        yield Target(kind, client)


@pytest.fixture(params=["rest", "http"])
def fastapi(served: Served, request: pytest.FixtureRequest) -> Iterator[Target]:
    yield from _target(served, request.param, FASTAPI_APIS[request.param])


@pytest.fixture(params=["rest", "http"])
def powertools(served: Served, request: pytest.FixtureRequest) -> Iterator[Target]:
    yield from _target(served, request.param, POWERTOOLS_APIS[request.param])


def headers_of(target: Target, response: httpx.Response) -> list[tuple[str, str]]:
    """All response headers, sorted, less `date`; the request id must be a UUID, shown as `<id>`."""
    out = []
    for name, value in response.headers.multi_items():
        if name == "date":
            continue
        if name == target.request_id_header:
            uuid.UUID(value)
            value = "<id>"
        out.append((name, value))
    return sorted(out)


def plain_headers(
    target: Target, response: httpx.Response, content_type: str, *extra: tuple[str, str]
) -> list[tuple[str, str]]:
    """What a response with only a body and `extra` headers carries."""
    return sorted(
        [
            ("content-length", str(len(response.content))),
            ("content-type", content_type),
            (target.request_id_header, "<id>"),
            *extra,
        ]
    )


def test_fastapi_path_query_headers_and_cookies(fastapi: Target, proxy_events: EventLog) -> None:
    response = fastapi.client.get(
        "/items/5?tag=a&tag=b&q=x",
        headers={"x-token": "secret", "cookie": "session=abc; theme=dark"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "item_id": 5,
        "tag": ["a", "b"],
        "q": "x",
        "x_token": "secret",
        "session": "abc",
    }
    assert headers_of(fastapi, response) == plain_headers(fastapi, response, "application/json")
    # The request reached FastAPI through the event the conftest validated.
    assert (
        proxy_events.last(fastapi.builder)["requestContext"]["requestId"]
        == (response.headers[fastapi.request_id_header])
    )


def test_fastapi_json_body_and_set_cookie(fastapi: Target) -> None:
    response = fastapi.client.post(
        "/items", json={"name": "lamp", "price": 12.5, "tags": ["home", "light"]}
    )
    assert response.status_code == 201
    assert response.json() == {
        "created": {"name": "lamp", "price": 12.5, "tags": ["home", "light"]}
    }
    assert headers_of(fastapi, response) == plain_headers(
        fastapi,
        response,
        "application/json",
        ("set-cookie", "last_item=lamp; HttpOnly; Path=/; SameSite=lax"),
        ("set-cookie", "visits=1; Path=/items; SameSite=lax"),
        ("x-item-count", "2"),
    )


def test_fastapi_validates_the_body_itself(fastapi: Target) -> None:
    response = fastapi.client.post("/items", json={"name": "lamp"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert (problem["type"], problem["loc"]) == ("missing", ["body", "price"])


def test_fastapi_binary_response(fastapi: Target) -> None:
    response = fastapi.client.get("/logo.png", headers={"accept": "image/png"})
    assert response.status_code == 200
    assert response.content == PNG
    assert headers_of(fastapi, response) == plain_headers(fastapi, response, "image/png")


def test_fastapi_answers_its_own_404_and_405(fastapi: Target) -> None:
    missing = fastapi.client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert headers_of(fastapi, missing) == plain_headers(fastapi, missing, "application/json")
    wrong_method = fastapi.client.delete("/items/5")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "Method Not Allowed"}
    assert headers_of(fastapi, wrong_method) == plain_headers(
        fastapi, wrong_method, "application/json", ("allow", "GET")
    )


def test_fastapi_gets_a_decoded_path_from_either_event(
    fastapi: Target, proxy_events: EventLog
) -> None:
    response = fastapi.client.get("/greet/ada%20lovelace")
    assert response.status_code == 200
    assert response.json() == {"hello": "ada lovelace"}
    # As on AWS, REST events keep the path percent-encoded (Mangum decodes it) and HTTP APIs
    # send it decoded.
    event = proxy_events.last(fastapi.builder)
    if fastapi.kind == "rest":
        assert event["path"] == "/greet/ada%20lovelace"
    else:
        assert event["rawPath"] == "/greet/ada lovelace"


def test_powertools_path_parameter_query_and_cors(powertools: Target) -> None:
    response = powertools.client.get(
        "/todos/1?verbose=yes&verbose=no",
        headers={"x-agent": "pytest", "origin": TODO_ORIGIN},
    )
    assert response.status_code == 200
    # REST's single-value map holds the last value; HTTP APIs join repeats with commas.
    verbose = "no" if powertools.kind == "rest" else "yes,no"
    assert response.json() == {
        "id": "1",
        "title": "buy milk",
        "query": {"verbose": verbose},
        "agent": "pytest",
    }
    assert headers_of(powertools, response) == plain_headers(
        powertools, response, "application/json", *POWERTOOLS_CORS
    )


def test_powertools_json_body_response_and_cookie(powertools: Target) -> None:
    response = powertools.client.post(
        "/todos", json={"title": "ship it", "done": True}, headers={"origin": TODO_ORIGIN}
    )
    assert response.status_code == 201
    assert response.json() == {"created": "ship it", "done": True}
    assert headers_of(powertools, response) == plain_headers(
        powertools,
        response,
        "application/json",
        *POWERTOOLS_CORS,
        ("set-cookie", "last_todo=ship it; Path=/; Secure"),
        ("x-todo-count", "3"),
    )


def test_powertools_not_found(powertools: Target) -> None:
    unknown_todo = powertools.client.get("/todos/9")
    assert unknown_todo.status_code == 404
    assert unknown_todo.json() == {"statusCode": 404, "message": "no todo 9"}
    unknown_route = powertools.client.get("/elsewhere")
    assert unknown_route.status_code == 404
    assert unknown_route.json() == {"statusCode": 404, "message": "Not found"}
    assert headers_of(powertools, unknown_route) == plain_headers(
        powertools, unknown_route, "application/json"
    )


def test_powertools_answers_the_cors_preflight(powertools: Target) -> None:
    response = powertools.client.options(
        "/todos", headers={"origin": TODO_ORIGIN, "access-control-request-method": "POST"}
    )
    assert response.status_code == 204
    assert response.content == b""
    expected = [
        ("access-control-allow-methods", "GET,OPTIONS,POST"),
        *POWERTOOLS_CORS,
        ("content-length", "0"),
        (powertools.request_id_header, "<id>"),
    ]
    if powertools.kind == "rest":
        # A REST API names a type when the function's result names none, body or not.
        expected.append(("content-type", "application/json"))
    assert headers_of(powertools, response) == sorted(expected)


def test_event_log_flags_an_event_powertools_refuses(proxy_events: EventLog) -> None:
    proxy_events.record("http_event", {"version": "2.0", "rawPath": "/x"})
    assert len(proxy_events.invalid) == 1
    assert proxy_events.invalid[0].startswith("http_event for None /x: ")
    proxy_events.invalid.clear()  # the refusal was the point; teardown must not fail
