"""Lambda authorizers over real HTTP: a real node, a real authorizer function in its own process.

One template serves every case: a REST API (TOKEN authorizer with a validation expression and the
default 300 s cache, one with caching off, a REQUEST authorizer) and an HTTP API (payload 2.0 with
simple responses, payload 1.0 with IAM policies). The authorizer decides by the token's first
word (`allow-...`, `deny-...`, `boom-...`) and prints every event it gets, so a test counts its
calls and checks its events in the function's log. Each test uses tokens of its own, because the
node (and so the authorizer cache) is shared by the module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequestV2,
    ApiGatewayAuthorizerToken,
)

from fogbank.functions._types import ChunkSink, InvokeRequest, InvokeResult
from fogbank.gateway import Exchange, HttpRequest, HttpResponse, Pipeline
from fogbank.gateway._auth import Authenticate
from fogbank.gateway._auth_policy import BadAuthorizerOutput, Decision, policy_answer
from fogbank.gateway._pipeline import SelectRoute
from fogbank.model import Identity, load_template
from fogbank.store._cache_memory import MemoryCache

from .auth_apps import write_app
from .conftest import EventLog, Served, scratch_dir, serving

AUTHORIZER = """
import json


def handler(event, context):
    token = _token(event)
    print("EVENT " + json.dumps(event))
    print("AUTHORIZER " + token)
    verdict = token.split("-")[0]
    if verdict == "boom":
        raise RuntimeError("the authorizer broke")
    if verdict == "unauthorized":
        raise Exception("Unauthorized")
    if verdict == "garbage":
        return "not a policy"
    if event.get("version") == "2.0":
        verdicts = {"allow": True, "deny": False}
        context = {"token": token, "tags": ["a", "b"]}
        return {"isAuthorized": verdicts.get(verdict, "yes"), "context": context}
    arn = event.get("methodArn") or event["routeArn"]
    api, stage = arn.split("/")[:2]
    effect, resource = "Allow", f"{api}/{stage}/GET/*"
    if verdict == "deny":
        effect, resource = "Deny", arn
    elif verdict == "none":
        resource = f"{api}/{stage}/POST/elsewhere"
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": [resource]}
    answer = {
        "principalId": "user-" + token,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"token": token, "n": 7, "ok": True},
        "usageIdentifierKey": "key-" + token.ljust(20, "0"),
    }
    if verdict == "nested":
        answer["context"]["deep"] = {"a": 1}
    if verdict == "nopolicy":
        del answer["policyDocument"]
    if verdict == "maybe":
        statement["Effect"] = "Maybe"
    return answer


def _token(event):
    if event["type"] == "TOKEN":
        return event["authorizationToken"]
    if event.get("version") == "2.0":
        return event["identitySource"][0]
    if event.get("version") == "1.0":
        return event["identitySource"]
    return event["headers"]["X-User"]
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: TokenAuth
        Authorizers:
          TokenAuth:
            FunctionArn: !GetAtt Authorizer.Arn
            Identity:
              Header: Authorization
              ValidationExpression: "^[a-z]+-[a-z0-9-]+$"
          NoCache:
            FunctionArn: !GetAtt Authorizer.Arn
            Identity: {Header: X-Token, ReauthorizeEvery: 0}
          ByRequest:
            FunctionPayloadType: REQUEST
            FunctionArn: !GetAtt Authorizer.Arn
            Identity: {Headers: [X-User], QueryStrings: [tenant], ReauthorizeEvery: 60}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Simple
        Authorizers:
          Simple:
            FunctionArn: !GetAtt Authorizer.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization]}
          Policy:
            FunctionArn: !GetAtt Authorizer.Arn
            AuthorizerPayloadFormatVersion: "1.0"
            Identity: {Headers: [Authorization]}
  Authorizer:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: auth.handler, CodeUri: auth/}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: echo.handler
      CodeUri: echo/
      Events:
        Item: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: "/items/{id}", Method: get}}
        Delete: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: "/items/{id}", Method: delete}}
        NoCache:
          Type: Api
          Properties: {RestApiId: !Ref Rest, Path: /nocache, Method: get, Auth: {Authorizer: NoCache}}
        Request:
          Type: Api
          Properties: {RestApiId: !Ref Rest, Path: /req, Method: get, Auth: {Authorizer: ByRequest}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Rest, Path: /open, Method: get, Auth: {Authorizer: NONE}}
        Simple: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /simple, Method: get}}
        Policy:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /policy, Method: get, Auth: {Authorizer: Policy}}
"""

DENY = "User is not authorized to access this resource with an explicit deny"
NO_ALLOW = "User is not authorized to access this resource"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with scratch_dir("fogbank-auth-lambda-") as root:
        template = write_app(root, TEMPLATE, auth=AUTHORIZER)
        with serving(template, root / "state") as node:
            yield node


def rest(served: Served, path: str, method: str = "GET", **headers: str) -> httpx.Response:
    return httpx.request(method, f"{served.base}/prod{path}", headers=headers)


def http(served: Served, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{served.base}{path}", headers=headers)


def authorizer_log(served: Served) -> list[str]:
    """The authorizer function's log lines so far (flushed first: the node buffers them)."""
    node = served.node.node
    assert node is not None

    async def flush() -> None:
        node.logs.flush()

    served.node.call(flush)
    path = node.logs.path("Authorizer")
    return path.read_text().splitlines() if path.exists() else []


def calls(served: Served, token: str) -> int:
    """How many times the authorizer ran for `token`."""
    return authorizer_log(served).count(f"AUTHORIZER {token}")


def event_for(served: Served, token: str) -> dict[str, Any]:
    """The last event the authorizer got for `token`."""
    for line in reversed(authorizer_log(served)):
        if line.startswith("EVENT ") and token in line:
            event: dict[str, Any] = json.loads(line.removeprefix("EVENT "))
            return event
    raise AssertionError(f"the authorizer never saw {token}")


def api_id(served: Served, logical_id: str) -> str:
    return next(a.api_id for a in served.app.apis.values() if a.logical_id == logical_id)


# REST, TOKEN


def test_token_allow_passes_principal_and_context(served: Served, proxy_events: EventLog) -> None:
    response = rest(served, "/items/7", Authorization="allow-ctx")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    authorizer = proxy_events.last("rest_event")["requestContext"]["authorizer"]
    latency = authorizer.pop("integrationLatency")
    assert isinstance(latency, int)
    assert authorizer == {
        "principalId": "user-allow-ctx",
        "token": "allow-ctx",
        "n": "7",
        "ok": "true",
        "usageIdentifierKey": "key-allow-ctx00000000000",
    }
    event = event_for(served, "allow-ctx")
    ApiGatewayAuthorizerToken.model_validate(event)
    arn = f"arn:aws:execute-api:us-east-1:123456789012:{api_id(served, 'Rest')}/prod/GET/items/7"
    assert event == {"type": "TOKEN", "authorizationToken": "allow-ctx", "methodArn": arn}


def test_explicit_deny_is_403_with_capital_m(served: Served) -> None:
    response = rest(served, "/items/7", Authorization="deny-one")
    assert response.status_code == 403
    assert response.json() == {"Message": DENY}
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert response.headers["x-amzn-requestid"]


def test_a_policy_that_allows_nothing_here_is_403(served: Served) -> None:
    response = rest(served, "/items/7", Authorization="none-one")
    assert (response.status_code, response.json()) == (403, {"Message": NO_ALLOW})
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"


def test_missing_token_is_401_without_calling_the_authorizer(served: Served) -> None:
    before = len(authorizer_log(served))
    response = rest(served, "/items/7")
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert response.headers["x-amzn-errortype"] == "UnauthorizedException"
    assert len(authorizer_log(served)) == before


def test_validation_expression_refuses_before_the_function(served: Served) -> None:
    response = rest(served, "/items/7", Authorization="Bearer allow-expr")
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert not any("allow-expr" in line for line in authorizer_log(served))


def test_cached_policy_is_reused_and_evaluated_per_method(served: Served) -> None:
    first = rest(served, "/items/1", Authorization="allow-cached")
    other_item = rest(served, "/items/2", Authorization="allow-cached")
    delete = rest(served, "/items/1", "DELETE", Authorization="allow-cached")
    assert (first.status_code, other_item.status_code) == (200, 200)
    # The cached policy allows GET only: the same caller's DELETE is refused without a call.
    assert (delete.status_code, delete.json()) == (403, {"Message": NO_ALLOW})
    assert calls(served, "allow-cached") == 1


def test_cached_context_reaches_the_integration(served: Served, proxy_events: EventLog) -> None:
    rest(served, "/items/1", Authorization="allow-twice")
    again = rest(served, "/items/1", Authorization="allow-twice")
    assert again.status_code == 200
    authorizer = proxy_events.last("rest_event")["requestContext"]["authorizer"]
    assert (authorizer["principalId"], authorizer["token"]) == ("user-allow-twice", "allow-twice")
    assert calls(served, "allow-twice") == 1


def test_ttl_zero_calls_the_authorizer_every_time(served: Served) -> None:
    for _ in range(2):
        assert rest(served, "/nocache", **{"X-Token": "allow-ttl0"}).status_code == 200
    assert calls(served, "allow-ttl0") == 2


def test_function_error_is_500_null_message(served: Served) -> None:
    response = rest(served, "/items/7", Authorization="boom-one")
    assert response.status_code == 500
    assert response.content == b'{"message":null}'
    assert response.headers["x-amzn-errortype"] == "AuthorizerConfigurationException"


def test_failures_are_not_cached(served: Served) -> None:
    for _ in range(2):
        assert rest(served, "/items/7", Authorization="boom-twice").status_code == 500
    assert calls(served, "boom-twice") == 2


def test_unauthorized_error_is_401(served: Served) -> None:
    response = rest(served, "/items/7", Authorization="unauthorized-one")
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


@pytest.mark.parametrize("verdict", ["garbage", "nested", "nopolicy", "maybe"])
def test_unusable_answer_is_500(served: Served, verdict: str) -> None:
    response = rest(served, "/items/7", Authorization=f"{verdict}-answer")
    assert response.status_code == 500
    assert response.content == b'{"message":null}'
    assert response.headers["x-amzn-errortype"] == "AuthorizerConfigurationException"


def test_route_without_authorizer_is_open(served: Served) -> None:
    assert rest(served, "/open").status_code == 200


# REST, REQUEST


def test_request_authorizer_needs_every_identity_source(served: Served) -> None:
    response = rest(served, "/req", **{"X-User": "allow-nosource"})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert calls(served, "allow-nosource") == 0


def test_request_authorizer_event_and_cache_key(served: Served) -> None:
    url = f"{served.base}/prod/req"
    user = {"X-User": "allow-req"}
    for tenant in ("acme", "acme", "globex"):
        response = httpx.get(url, params={"tenant": tenant}, headers=user)
        assert response.status_code == 200
    # Cached by the values of both sources: a new tenant is a new identity.
    assert calls(served, "allow-req") == 2
    event = event_for(served, "allow-req")
    arn = f"arn:aws:execute-api:us-east-1:123456789012:{api_id(served, 'Rest')}/prod/GET/req"
    assert (event["type"], event["methodArn"]) == ("REQUEST", arn)
    assert event["queryStringParameters"] == {"tenant": "globex"}
    assert event["headers"]["X-User"] == "allow-req"
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/req", "/req", "GET")
    assert event["requestContext"]["stage"] == "prod"
    assert "body" not in event
    assert "authorizer" not in event["requestContext"]


# HTTP API


def test_simple_response_allows_with_context(served: Served, proxy_events: EventLog) -> None:
    response = http(served, "/simple", Authorization="allow-simple")
    assert response.status_code == 200
    authorizer = proxy_events.last("http_event")["requestContext"]["authorizer"]
    assert authorizer == {"lambda": {"token": "allow-simple", "tags": ["a", "b"]}}
    event = event_for(served, "allow-simple")
    ApiGatewayAuthorizerRequestV2.model_validate(event)
    arn = f"arn:aws:execute-api:us-east-1:123456789012:{api_id(served, 'Http')}/$default/GET/simple"
    assert (event["routeArn"], event["identitySource"]) == (arn, ["allow-simple"])
    assert (event["version"], event["type"], event["routeKey"]) == ("2.0", "REQUEST", "GET /simple")


def test_simple_response_refusal_is_403_forbidden(served: Served) -> None:
    response = http(served, "/simple", Authorization="deny-simple")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    assert response.headers["apigw-requestid"]


def test_http_missing_identity_is_401(served: Served) -> None:
    response = http(served, "/simple")
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


def test_http_payload_1_policy(served: Served, proxy_events: EventLog) -> None:
    allowed = http(served, "/policy", Authorization="allow-v1")
    denied = http(served, "/policy", Authorization="deny-v1")
    assert allowed.status_code == 200
    assert proxy_events.last("http_event")["requestContext"]["authorizer"] == {
        "lambda": {"token": "allow-v1", "n": 7, "ok": True}
    }
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden"})
    event = event_for(served, "allow-v1")
    assert (event["version"], event["type"]) == ("1.0", "REQUEST")
    assert (event["identitySource"], event["authorizationToken"]) == ("allow-v1", "allow-v1")
    assert event["methodArn"].endswith("/$default/GET/policy")


@pytest.mark.parametrize(("path", "token"), [("/simple", "boom-h"), ("/simple", "garbage-h")])
def test_http_authorizer_failure_is_500(served: Served, path: str, token: str) -> None:
    response = http(served, path, Authorization=token)
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_http_simple_answer_needs_a_boolean(served: Served) -> None:
    # The authorizer answers {"isAuthorized": "yes"} for any verdict but allow and deny.
    response = http(served, "/simple", Authorization="other-h")
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


# In process: the cache's TTL under a clock the test moves, and policy evaluation.


class CountingInvoker:
    """Stands in for the worker processes: every call answers with an allow-everything policy."""

    def __init__(self) -> None:
        self.calls = 0

    async def invoke(self, request: InvokeRequest, sink: ChunkSink | None = None) -> InvokeResult:
        self.calls += 1
        arn = json.loads(request.payload)["methodArn"]
        statement = {"Effect": "Allow", "Action": "execute-api:*", "Resource": arn}
        answer = {"principalId": "p", "policyDocument": {"Statement": statement}}
        return InvokeResult(request.request_id, json.dumps(answer).encode(), "$LATEST")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def _answered(exchange: Exchange) -> HttpResponse:
    return HttpResponse(200, body=b"integration")


def test_cached_answer_lives_exactly_its_ttl(tmp_path: Path) -> None:
    app = load_template(write_app(tmp_path, TEMPLATE, auth=AUTHORIZER))
    invoker, clock = CountingInvoker(), Clock()
    authenticate = Authenticate(invoker, Identity(), cache=MemoryCache(clock), clock=clock)
    pipeline = Pipeline(lambda: app, [SelectRoute(), authenticate, _answered])

    def get(token: str) -> int:
        request = HttpRequest(
            method="GET",
            raw_path="/prod/items/1",
            path="/prod/items/1",
            query_string=b"",
            headers=[("authorization", token)],
            body=b"",
            source_ip="127.0.0.1",
            host="127.0.0.1",
            port=3000,
        )
        return asyncio.run(pipeline.handle(request)).status

    assert get("allow-ttl") == 200
    clock.now += 299.9  # the template's TokenAuth keeps answers 300 s (the default)
    assert get("allow-ttl") == 200
    assert invoker.calls == 1
    clock.now += 0.1
    assert get("allow-ttl") == 200
    assert invoker.calls == 2
    assert get("allow-other") == 200
    assert invoker.calls == 3
    asyncio.run(authenticate.close())


ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/items/7"


def statement(effect: str, resource: object, action: object = "execute-api:Invoke") -> object:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("statements", "decision"),
    [
        ([statement("Allow", ARN)], Decision.ALLOW),
        ([statement("Allow", "arn:aws:execute-api:*:*:abc123/*/GET/items/?")], Decision.ALLOW),
        (
            [statement("Allow", "arn:aws:execute-api:*:*:abc123/*/GET/items/??")],
            Decision.IMPLICIT_DENY,
        ),
        ([statement("Allow", ["arn:other", "*"])], Decision.ALLOW),
        ([statement("Allow", "*", action="execute-api:*")], Decision.ALLOW),
        ([statement("Allow", "*", action="EXECUTE-API:invoke")], Decision.ALLOW),
        ([statement("Allow", "*", action="s3:GetObject")], Decision.IMPLICIT_DENY),
        ([statement("Allow", "*"), statement("Deny", "arn:*:other-api/*")], Decision.ALLOW),
        ([statement("Allow", "*"), statement("Deny", "arn:*/GET/*")], Decision.EXPLICIT_DENY),
        ([statement("Deny", "arn:*/POST/*"), statement("Allow", ARN)], Decision.ALLOW),
        ([statement("Allow", ARN.replace("GET", "get"))], Decision.IMPLICIT_DENY),
    ],
    ids=[
        "exact",
        "question-mark",
        "question-mark-counts",
        "resource-list",
        "action-wildcard",
        "action-case",
        "other-action",
        "deny-elsewhere",
        "deny-wins",
        "deny-for-another-method",
        "resource-case",
    ],
)
def test_policy_evaluation(statements: list[object], decision: Decision) -> None:
    answer = policy_answer(
        {"principalId": "p", "policyDocument": {"Statement": statements}}, flatten=True
    )
    assert answer.decide(ARN) is decision


def test_a_single_statement_object_and_flattened_context() -> None:
    answer = policy_answer(
        {
            "principalId": 42,
            "policyDocument": {"Statement": statement("Allow", ARN)},
            "context": {"s": "x", "i": 1, "f": 1.5, "t": True, "n": False},
        },
        flatten=True,
    )
    assert answer.decide(ARN) is Decision.ALLOW
    assert (answer.principal_id, answer.context) == (
        "42",
        {"s": "x", "i": "1", "f": "1.5", "t": "true", "n": "false"},
    )


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {"policyDocument": {"Statement": [statement("Allow", ARN)]}},
        {"principalId": "p", "policyDocument": {"Statement": []}},
        {"principalId": "p", "policyDocument": {"Statement": [statement("Allow", 7)]}},
        {
            "principalId": "p",
            "policyDocument": {"Statement": [statement("Allow", ARN)]},
            "context": {"a": None},
        },
        {
            "principalId": "p",
            "policyDocument": {"Statement": [statement("Allow", ARN)]},
            "context": {"a": [1]},
        },
        {
            "principalId": "p",
            "policyDocument": {"Statement": [statement("Allow", ARN)]},
            "usageIdentifierKey": 5,
        },
    ],
    ids=[
        "null",
        "list",
        "no-principal",
        "no-statement",
        "bad-resource",
        "null-context",
        "array-context",
        "bad-key",
    ],
)
def test_unusable_policy_answers(answer: object) -> None:
    with pytest.raises(BadAuthorizerOutput):
        policy_answer(answer, flatten=True)
