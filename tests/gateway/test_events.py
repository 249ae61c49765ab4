"""Lambda proxy events, field by field, each one validated by Powertools' parser models."""

from __future__ import annotations

import base64
import calendar
import re
from typing import Any
from urllib.parse import unquote

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from fogbank.gateway._event_parts import binary_type, clf_time, extended_id_for, resource_id
from fogbank.gateway._events import function_url_event, http_event, http_event_v1, rest_event
from fogbank.gateway._types import HttpRequest, RouteMatch, UrlMatch
from fogbank.model import (
    Api,
    ApiKind,
    FunctionUrl,
    Identity,
    Integration,
    IntegrationType,
    Route,
    Stage,
)

LAMBDA = Integration(IntegrationType.AWS_PROXY, function_name="fn")
IDENTITY = Identity(region="eu-west-1", account_id="123456789012")
ARRIVAL_MS = calendar.timegm((2015, 4, 9, 12, 34, 56)) * 1000 + 789
REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.localhost"


def make_request(
    method: str = "GET",
    raw_path: str = "/",
    *,
    query: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    user_agent: str | None = "pytest/1.0",
) -> HttpRequest:
    """A request as the ASGI layer makes it: lower-case header names, decoded `path`."""
    base = [("host", "localhost:3000")]
    if user_agent is not None:
        base.append(("user-agent", user_agent))
    return HttpRequest(
        method=method,
        raw_path=raw_path,
        path=unquote(raw_path),
        query_string=query,
        headers=[*base, *headers],
        body=body,
        source_ip="127.0.0.1",
        host="localhost",
        port=3000,
        received_ms=ARRIVAL_MS,
    )


def make_match(
    kind: ApiKind,
    route_path: str,
    *,
    method: str = "GET",
    stage: str = "prod",
    stage_in_path: bool = True,
    binary: tuple[str, ...] = (),
    variables: dict[str, str] | None = None,
    **route_options: Any,
) -> RouteMatch:
    route = Route(method=method, path=route_path, integration=LAMBDA, **route_options)
    api = Api(
        api_id=API_ID,
        name="shop",
        kind=kind,
        routes=(route,),
        stages={stage: Stage(stage, variables or {})},
        binary_media_types=binary,
    )
    return RouteMatch(
        api=api,
        stage=api.stages[stage],
        route=route,
        path_params={},
        path="",
        stage_in_path=stage_in_path,
        domain_name=DOMAIN,
    )


def url_match(auth_type: str = "NONE") -> UrlMatch:
    url = FunctionUrl(function_name="fn", url_id="abcdefghijklmnop", auth_type=auth_type)
    return UrlMatch(url=url, domain_name="abcdefghijklmnop.lambda-url.eu-west-1.localhost")


def rest(request: HttpRequest, match: RouteMatch, **options: Any) -> dict[str, Any]:
    """`rest_event`, checked against Powertools' REST model on the way."""
    event = rest_event(request, match, request_id=REQUEST_ID, identity=IDENTITY, **options)
    APIGatewayProxyEventModel.model_validate(event)
    return event


def http(request: HttpRequest, match: RouteMatch, **options: Any) -> dict[str, Any]:
    event = http_event(request, match, request_id=REQUEST_ID, identity=IDENTITY, **options)
    APIGatewayProxyEventV2Model.model_validate(event)
    return event


def http_v1(request: HttpRequest, match: RouteMatch, **options: Any) -> dict[str, Any]:
    event = http_event_v1(request, match, request_id=REQUEST_ID, identity=IDENTITY, **options)
    APIGatewayProxyEventModel.model_validate(event)
    return event


def url(request: HttpRequest, match: UrlMatch) -> dict[str, Any]:
    event = function_url_event(request, match, request_id=REQUEST_ID, identity=IDENTITY)
    APIGatewayProxyEventV2Model.model_validate(event)
    return event


FORWARDED_V1 = {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Port": "3000"}


def test_rest_event_every_field() -> None:
    request = make_request("GET", "/prod/items/7", query=b"x=1")
    match = make_match(ApiKind.REST, "/items/{id}", variables={"table": "items"})
    event = rest(request, match)
    context = event.pop("requestContext")
    assert event == {
        "resource": "/items/{id}",
        "path": "/items/7",
        "httpMethod": "GET",
        "headers": {
            "Host": "localhost:3000",
            "User-Agent": "pytest/1.0",
            **FORWARDED_V1,
            "X-Forwarded-Proto": "http",
        },
        "multiValueHeaders": {
            "Host": ["localhost:3000"],
            "User-Agent": ["pytest/1.0"],
            "X-Forwarded-For": ["127.0.0.1"],
            "X-Forwarded-Port": ["3000"],
            "X-Forwarded-Proto": ["http"],
        },
        "queryStringParameters": {"x": "1"},
        "multiValueQueryStringParameters": {"x": ["1"]},
        "pathParameters": {"id": "7"},
        "stageVariables": {"table": "items"},
        "body": None,
        "isBase64Encoded": False,
    }
    assert context == {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "extendedRequestId": extended_id_for(REQUEST_ID),
        "httpMethod": "GET",
        "identity": {
            "accessKey": None,
            "accountId": None,
            "apiKey": None,
            "apiKeyId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": "127.0.0.1",
            "user": None,
            "userAgent": "pytest/1.0",
            "userArn": None,
        },
        "path": "/prod/items/7",
        "protocol": "HTTP/1.1",
        "requestId": REQUEST_ID,
        "requestTime": "09/Apr/2015:12:34:56 +0000",
        "requestTimeEpoch": ARRIVAL_MS,
        "resourceId": resource_id(API_ID, "/items/{id}"),
        "resourcePath": "/items/{id}",
        "stage": "prod",
    }


def test_rest_event_served_at_the_root_looks_staged() -> None:
    # `sam local start-api` style: no stage in the URL, yet the event is what AWS would send.
    event = rest(
        make_request("GET", "/items/7"),
        make_match(ApiKind.REST, "/items/{id}", stage_in_path=False),
    )
    assert event["path"] == "/items/7"
    assert event["requestContext"]["path"] == "/prod/items/7"
    assert event["requestContext"]["stage"] == "prod"
    root = rest(make_request("GET", "/prod"), make_match(ApiKind.REST, "/"))
    assert (root["path"], root["resource"], root["pathParameters"]) == ("/", "/", None)


def test_rest_headers_last_value_title_case_and_forwarding() -> None:
    headers = (
        ("x-multi", "a"),
        ("content-type", "application/json"),
        ("x-multi", "b"),
        ("content-length", "2"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("cookie", "a=1; b=2"),
    )
    event = rest(
        make_request("POST", "/prod/x", headers=headers, body=b"{}"),
        make_match(ApiKind.REST, "/x", method="POST"),
    )
    assert event["headers"]["X-Multi"] == "b"  # the last value, as API Gateway v1 keeps it
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["headers"]["Content-Type"] == "application/json"
    assert "Content-Length" not in event["headers"]  # REST strips it
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"  # the gateway's own, not the client's
    assert event["headers"]["Cookie"] == "a=1; b=2"  # REST leaves cookies in the header
    assert event["body"] == "{}"


def test_rest_query_keeps_every_value_and_decodes() -> None:
    query = b"a=1&a=2&empty=&flag&plus=a+b&encoded=a%2Bb&url=https%3A%2F%2Fx.org%2Fp"
    event = rest(make_request("GET", "/prod/q", query=query), make_match(ApiKind.REST, "/q"))
    assert event["queryStringParameters"] == {
        "a": "2",
        "empty": "",
        "flag": "",
        "plus": "a b",
        "encoded": "a+b",
        "url": "https://x.org/p",
    }
    assert event["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert event["multiValueQueryStringParameters"]["plus"] == ["a b"]


@pytest.mark.parametrize(
    ("route_path", "raw_path", "params"),
    [
        ("/items/{id}", "/prod/items/a%20b", {"id": "a%20b"}),
        ("/items/{id}", "/prod/items/%40home", {"id": "%40home"}),
        ("/items/{id}/parts/{part}", "/prod/items/7/parts/x%2Fy", {"id": "7", "part": "x%2Fy"}),
        ("/files/{proxy+}", "/prod/files/a/b%20c/d.txt", {"proxy": "a/b%20c/d.txt"}),
        ("/{proxy+}", "/prod/deep/er", {"proxy": "deep/er"}),
    ],
)
def test_rest_path_parameters_stay_percent_encoded(
    route_path: str, raw_path: str, params: dict[str, str]
) -> None:
    event = rest(make_request("GET", raw_path), make_match(ApiKind.REST, route_path))
    assert event["pathParameters"] == params
    assert event["path"] == raw_path.removeprefix("/prod")
    assert event["requestContext"]["path"] == raw_path


@pytest.mark.parametrize(
    ("content_type", "patterns", "binary"),
    [
        ("image/png", ("image/png",), True),
        ("image/png", ("image/*",), True),
        ("image/png", ("image~1png",), True),  # CloudFormation's escaped form
        ("Image/PNG; q=1", ("image/png",), True),
        ("application/octet-stream", ("*/*",), True),
        (None, ("*/*",), True),
        (None, ("image/*",), False),
        ("application/json", ("image/*",), False),
        ("image/png", (), False),
    ],
)
def test_rest_binary_media_types(
    content_type: str | None, patterns: tuple[str, ...], binary: bool
) -> None:
    assert binary_type(content_type, patterns) is binary
    headers = (("content-type", content_type),) if content_type else ()
    payload = b"\x89PNG\r\n" if binary else b"plain text"
    request = make_request("POST", "/prod/up", headers=headers, body=payload)
    event = rest(request, make_match(ApiKind.REST, "/up", method="POST", binary=patterns))
    assert event["isBase64Encoded"] is binary
    sent = base64.b64decode(event["body"]) if binary else event["body"].encode()
    assert sent == payload


def test_invalid_utf8_text_body_is_sent_as_base64() -> None:
    # AWS would replace the bad bytes; base64 with the flag set keeps every one of them.
    payload = b"caf\xe9 \xff"
    headers = (("content-type", "text/plain"),)
    event = rest(
        make_request("POST", "/prod/t", headers=headers, body=payload),
        make_match(ApiKind.REST, "/t", method="POST"),
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    v2 = http(
        make_request("POST", "/t", headers=headers, body=payload),
        make_match(ApiKind.HTTP, "/t", method="POST", stage="$default", stage_in_path=False),
    )
    assert (v2["isBase64Encoded"], base64.b64decode(v2["body"])) == (True, payload)


def test_rest_absent_maps_are_null() -> None:
    event = rest(
        make_request("DELETE", "/prod/x", user_agent=None),
        make_match(ApiKind.REST, "/x", method="DELETE"),
    )
    for key in (
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ):
        assert key in event
        assert event[key] is None
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["userAgent"] is None
    assert "authorizer" not in event["requestContext"]


def test_rest_authorizer_api_key_and_operation_name() -> None:
    match = make_match(ApiKind.REST, "/k", api_key_required=True, operation_name="GetK")
    request = make_request("GET", "/prod/k", headers=(("x-api-key", "k" * 20),))
    authorizer = {"principalId": "me", "integrationLatency": 3, "role": "admin"}
    event = rest(
        request, match, authorizer=authorizer, api_key_id="key1", extended_request_id="EXT="
    )
    context = event["requestContext"]
    assert context["authorizer"] == authorizer
    assert (context["identity"]["apiKey"], context["identity"]["apiKeyId"]) == ("k" * 20, "key1")
    assert context["operationName"] == "GetK"
    assert context["extendedRequestId"] == "EXT="
    assert event["headers"]["X-Api-Key"] == "k" * 20
    # A route without the requirement does not reveal the key in the identity.
    open_event = rest(request, make_match(ApiKind.REST, "/k"), api_key_id="key1")
    assert open_event["requestContext"]["identity"]["apiKey"] is None
    assert open_event["requestContext"]["identity"]["apiKeyId"] is None


def test_http_event_every_field() -> None:
    request = make_request(
        "POST",
        "/items/7",
        query=b"a=1&a=2&b=x+y",
        headers=(
            ("content-type", "application/json"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("cookie", "s=1; t=2"),
        ),
        body=b'{"n": 1}',
    )
    match = make_match(
        ApiKind.HTTP, "/items/{id}", method="POST", stage="$default", stage_in_path=False
    )
    event = http(request, match)
    assert event == {
        "version": "2.0",
        "routeKey": "POST /items/{id}",
        "rawPath": "/items/7",
        "rawQueryString": "a=1&a=2&b=x+y",
        "cookies": ["s=1", "t=2"],
        "headers": {
            "host": "localhost:3000",
            "user-agent": "pytest/1.0",
            "content-type": "application/json",
            "x-multi": "a,b",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "3000",
            "x-forwarded-proto": "http",
        },
        "queryStringParameters": {"a": "1,2", "b": "x y"},
        "pathParameters": {"id": "7"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": "POST",
                "path": "/items/7",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest/1.0",
            },
            "requestId": REQUEST_ID,
            "routeKey": "POST /items/{id}",
            "stage": "$default",
            "time": "09/Apr/2015:12:34:56 +0000",
            "timeEpoch": ARRIVAL_MS,
        },
        "body": '{"n": 1}',
        "isBase64Encoded": False,
    }


def test_http_event_optional_keys_absent_and_default_route() -> None:
    match = make_match(
        ApiKind.HTTP, "$default", method="ANY", stage="$default", stage_in_path=False
    )
    event = http(make_request("GET", "/anything/here", user_agent=None), match)
    for key in ("cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"):
        assert key not in event
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "$default"
    assert event["requestContext"]["http"]["userAgent"] == ""
    assert event["isBase64Encoded"] is False
    assert "authorizer" not in event["requestContext"]


def test_http_cookies_from_every_cookie_header_and_authorizer() -> None:
    headers = (("cookie", "a=1; b=2"), ("cookie", "c=3;d=4"))
    match = make_match(ApiKind.HTTP, "/c", stage="$default", stage_in_path=False)
    authorizer = {"jwt": {"claims": {"sub": "me"}, "scopes": ["read"]}}
    event = http(make_request("GET", "/c", headers=headers), match, authorizer=authorizer)
    assert event["cookies"] == ["a=1", "b=2", "c=3", "d=4"]
    assert "cookie" not in event["headers"]
    assert event["requestContext"]["authorizer"] == authorizer


@pytest.mark.parametrize("stage_in_path", [True, False])
def test_http_named_stage_is_in_raw_path(stage_in_path: bool) -> None:
    # AWS puts a named stage in rawPath; fogbank does so even for a request served at the root.
    raw = "/dev/items/7" if stage_in_path else "/items/7"
    match = make_match(
        ApiKind.HTTP, "/items/{id}", stage="dev", stage_in_path=stage_in_path, variables={"v": "1"}
    )
    event = http(make_request("GET", raw), match)
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/dev/items/7"
    assert (event["requestContext"]["stage"], event["stageVariables"]) == ("dev", {"v": "1"})
    assert event["pathParameters"] == {"id": "7"}


@pytest.mark.parametrize(
    ("route_path", "raw_path", "params", "raw_event_path"),
    [
        ("/items/{id}", "/items/a%20b", {"id": "a b"}, "/items/a b"),
        ("/items/{id}", "/items/caf%C3%A9", {"id": "café"}, "/items/café"),
        ("/files/{proxy+}", "/files/a/b%20c", {"proxy": "a/b c"}, "/files/a/b c"),
    ],
)
def test_http_path_is_decoded(
    route_path: str, raw_path: str, params: dict[str, str], raw_event_path: str
) -> None:
    match = make_match(ApiKind.HTTP, route_path, stage="$default", stage_in_path=False)
    event = http(make_request("GET", raw_path), match)
    assert event["pathParameters"] == params
    assert event["rawPath"] == raw_event_path  # HTTP APIs decode rawPath too (measured on AWS)


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [
        ("text/plain", False),
        ("text/html; charset=utf-8", False),
        ("application/json", False),
        ("application/xml", False),
        ("application/javascript", False),
        ("application/vnd.api+json", False),
        ("application/atom+xml", False),
        ("application/x-www-form-urlencoded", True),  # measured on AWS: form posts are base64
        ("application/octet-stream", True),
        ("image/png", True),
        (None, True),
    ],
)
def test_http_body_encoding_follows_the_content_type(
    content_type: str | None, encoded: bool
) -> None:
    headers = (("content-type", content_type),) if content_type else ()
    request = make_request("POST", "/b", headers=headers, body=b"a=1&b=2")
    match = make_match(ApiKind.HTTP, "/b", method="POST", stage="$default", stage_in_path=False)
    for event in (http(request, match), http_v1(request, match), url(request, url_match())):
        assert event["isBase64Encoded"] is encoded
        assert event["body"] == (base64.b64encode(b"a=1&b=2").decode() if encoded else "a=1&b=2")


def test_http_event_v1_fields() -> None:
    request = make_request(
        "GET",
        "/items/a%20b",
        query=b"p=1&p=2",
        headers=(("x-multi", "a"), ("x-multi", "b"), ("content-length", "0")),
    )
    match = make_match(ApiKind.HTTP, "/items/{id}", stage="$default", stage_in_path=False)
    event = http_v1(request, match, authorizer={"lambda": {"user": "me"}})
    assert event["version"] == "1.0"
    assert (event["resource"], event["path"]) == ("/items/{id}", "/items/a b")
    assert event["headers"]["x-multi"] == "b"  # lower-case names on HTTP APIs
    assert event["multiValueHeaders"]["x-multi"] == ["a", "b"]
    assert event["headers"]["content-length"] == "0"
    assert event["queryStringParameters"] == {"p": "2"}
    assert event["multiValueQueryStringParameters"] == {"p": ["1", "2"]}
    assert event["pathParameters"] == {"id": "a b"}
    assert (event["stageVariables"], event["body"]) == (None, None)
    context = event["requestContext"]
    assert context["resourceId"] is None
    assert (context["resourcePath"], context["path"], context["stage"]) == (
        "/items/{id}",
        "/items/a b",
        "$default",
    )
    assert "apiKey" not in context["identity"]
    assert context["authorizer"] == {"lambda": {"user": "me"}}
    assert context["requestTime"] == "09/Apr/2015:12:34:56 +0000"


def test_function_url_event_fields() -> None:
    request = make_request("GET", "/a%20b/c", query=b"x=1&x=2", headers=(("cookie", "s=1; t=2"),))
    event = url(request, url_match())
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/a%20b/c"  # Function URLs keep rawPath encoded...
    context = event["requestContext"]
    assert context["http"]["path"] == "/a b/c"  # ...and decode http.path
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["cookie"] == "s=1; t=2"  # kept, unlike HTTP APIs
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert "pathParameters" not in event
    assert "stageVariables" not in event
    assert (context["accountId"], context["apiId"], context["domainPrefix"]) == (
        "anonymous",
        "abcdefghijklmnop",
        "abcdefghijklmnop",
    )
    assert (context["stage"], context["routeKey"]) == ("$default", "$default")
    assert context["domainName"] == "abcdefghijklmnop.lambda-url.eu-west-1.localhost"
    assert "authorizer" not in context
    iam = url(request, url_match("AWS_IAM"))
    assert iam["requestContext"]["accountId"] == "123456789012"


def test_times_and_ids() -> None:
    assert clf_time(ARRIVAL_MS) == "09/Apr/2015:12:34:56 +0000"
    assert (
        clf_time(calendar.timegm((2020, 3, 12, 19, 3, 58)) * 1000) == "12/Mar/2020:19:03:58 +0000"
    )
    first = resource_id(API_ID, "/items/{id}")
    assert first == resource_id(API_ID, "/items/{id}") != resource_id(API_ID, "/items")
    assert re.fullmatch(r"[a-z0-9]{6}", first)
    extended = extended_id_for(REQUEST_ID)
    assert len(extended) == 16
    assert extended.endswith("=")
    assert extended == extended_id_for(REQUEST_ID) != extended_id_for("other")
