"""Lambda proxy events built exactly as API Gateway and Function URLs build them.

Four shapes: REST APIs (payload 1.0), HTTP APIs with payload 2.0 or 1.0, and Function URLs (2.0).
The builders run on every request, so they fill plain dicts directly: no models, no copies.

Where AWS behaves surprisingly, and fogbank follows it (checked against live AWS captures):

- REST keeps the path and the path parameters percent-encoded (`/items/a%20b` gives
  `{"id": "a%20b"}`); HTTP APIs decode both `rawPath` and the parameters, Function URLs decode
  `requestContext.http.path` but not `rawPath`.
- Single-value maps of payload 1.0 hold the *last* value of a repeated header or parameter.
- Query values are decoded, `+` included (`a+b` -> `a b`); HTTP API repeats are comma-joined.
- HTTP APIs base64-encode every body that is not `text/*`, JSON, XML or JavaScript, form posts
  (`application/x-www-form-urlencoded`) and bodies without a content type included. REST APIs
  base64-encode only a body whose `Content-Type` matches `binaryMediaTypes`.
- REST drops `Content-Length`; every product adds `X-Forwarded-For/-Port/-Proto`.
- Function URLs keep the `cookie` header besides `cookies`; their `accountId` is `anonymous`
  when AuthType is NONE.

Known differences (deliberate): REST header names arrive lower-cased from the HTTP server, so
fogbank sends them in canonical Title-Case (`Content-Type`) where AWS keeps the client's case;
a body that is not valid UTF-8 where AWS expects text is base64-encoded with the flag set (AWS
would replace the bad bytes, which loses data); AWS's `Via` and CloudFront headers are not
invented, and `X-Amzn-Trace-Id` appears only when the request (or the pipeline) carries one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fogbank.gateway._event_parts import (
    binary_type,
    clf_time,
    encode_body,
    extended_id_for,
    path_params,
    resource_id,
    text_type,
    v1_headers,
    v1_query,
    v2_headers,
    v2_query,
)
from fogbank.gateway._types import HttpRequest, RouteMatch, UrlMatch
from fogbank.model import DEFAULT_ROUTE, DEFAULT_STAGE, Identity

_URL_ANONYMOUS = "anonymous"


def rest_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    request_id: str,
    identity: Identity,
    authorizer: dict[str, Any] | None = None,
    api_key_id: str | None = None,
    extended_request_id: str | None = None,
    caller: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The payload 1.0 event a REST API sends to a Lambda proxy integration.

    `path` is the request path below the stage and `requestContext.path` the same with `/{stage}`
    in front, both still percent-encoded; a request served at the root (no stage in the URL) gets
    the values AWS would give with the stage. `apiKey` / `apiKeyId` are filled only on routes that require a key.
    """
    route = match.route
    stage = match.stage.name
    in_stage = _in_stage(request, match)
    context_path = request.raw_path if match.stage_in_path else f"/{stage}{request.raw_path}"
    headers, multi_headers = v1_headers(request, canonical=True, keep_length=False)
    query, multi_query = v1_query(request.query_string)
    body, encoded = encode_body(
        request.body, binary_type(request.header("content-type"), match.api.binary_media_types)
    )
    ms = _arrival_ms(request)
    api_key = request.header("x-api-key") if route.api_key_required else None
    context: dict[str, Any] = {
        "accountId": identity.account_id,
        "apiId": match.api.api_id,
        "domainName": match.domain_name,
        "domainPrefix": _first_label(match.domain_name),
        "extendedRequestId": extended_request_id or extended_id_for(request_id),
        "httpMethod": request.method,
        "identity": _identity(
            request,
            rest=True,
            api_key=api_key,
            api_key_id=api_key_id if route.api_key_required else None,
        ),
        "path": context_path,
        "protocol": f"HTTP/{request.http_version}",
        "requestId": request_id,
        "requestTime": clf_time(ms),
        "requestTimeEpoch": ms,
        "resourceId": resource_id(match.api.api_id, route.path),
        "resourcePath": route.path,
        "stage": stage,
    }
    if route.operation_name:
        context["operationName"] = route.operation_name
    if caller:
        # A SigV4-signed (AWS_IAM) request names its signer here, not in `authorizer`.
        context["identity"].update(caller)
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": route.path,
        "path": in_stage,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_params(route.path, in_stage, match.path_params, decode=False)
        or None,
        "stageVariables": dict(match.stage.variables) or None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": encoded,
    }


def http_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    request_id: str,
    identity: Identity,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event an HTTP API sends to a Lambda proxy integration.

    `rawPath` is the decoded path with `/{stage}` in front for a named stage (as AWS always has
    it, even for a request fogbank served at the root); optional keys are absent, not null.
    `authorizer` is passed through as given (`{"jwt": ...}`, `{"lambda": ...}`, `{"iam": ...}`).
    """
    route = match.route
    path = _staged_path(request, match)
    headers, cookies = v2_headers(request, keep_cookie=False)
    raw_query = request.query_string.decode("utf-8", "replace")
    body, encoded = encode_body(request.body, not text_type(request.header("content-type")))
    ms = _arrival_ms(request)
    context: dict[str, Any] = {
        "accountId": identity.account_id,
        "apiId": match.api.api_id,
        "domainName": match.domain_name,
        "domainPrefix": _first_label(match.domain_name),
        "http": _v2_http(request, path),
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": match.stage.name,
        "time": clf_time(ms),
        "timeEpoch": ms,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    event = _v2_event(route.route_key, path, raw_query, headers, cookies, context)
    params = path_params(route.path, _in_stage(request, match), match.path_params, decode=True)
    if params:
        event["pathParameters"] = params
    if match.stage.variables:
        event["stageVariables"] = dict(match.stage.variables)
    return _with_body(event, body, encoded)


def http_event_v1(
    request: HttpRequest,
    match: RouteMatch,
    *,
    request_id: str,
    identity: Identity,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload 1.0 event an HTTP API sends when the integration asks for version 1.0.

    Shaped like REST's, with HTTP API values: `version: "1.0"`, lower-case header names, the
    decoded path with the stage prefix of a named stage, `resourceId` null, no API-key fields,
    HTTP API body encoding, and `resource` = the route (`$default` for the catch-all).
    """
    route = match.route
    path = _staged_path(request, match)
    headers, multi_headers = v1_headers(request, canonical=False, keep_length=True)
    query, multi_query = v1_query(request.query_string)
    body, encoded = encode_body(request.body, not text_type(request.header("content-type")))
    ms = _arrival_ms(request)
    context: dict[str, Any] = {
        "accountId": identity.account_id,
        "apiId": match.api.api_id,
        "domainName": match.domain_name,
        "domainPrefix": _first_label(match.domain_name),
        "extendedRequestId": request_id,
        "httpMethod": request.method,
        "identity": _identity(request, rest=False),
        "path": path,
        "protocol": f"HTTP/{request.http_version}",
        "requestId": request_id,
        "requestTime": clf_time(ms),
        "requestTimeEpoch": ms,
        "resourceId": None,
        "resourcePath": route.path,
        "stage": match.stage.name,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    params = path_params(route.path, _in_stage(request, match), match.path_params, decode=True)
    return {
        "version": "1.0",
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "requestContext": context,
        "pathParameters": params or None,
        "stageVariables": dict(match.stage.variables) or None,
        "body": body,
        "isBase64Encoded": encoded,
    }


def function_url_event(
    request: HttpRequest, url_match: UrlMatch, *, request_id: str, identity: Identity
) -> dict[str, Any]:
    """The payload 2.0 event a Function URL sends: route and stage `$default`, no authorizer.

    Unlike an HTTP API, `rawPath` stays percent-encoded (`requestContext.http.path` is decoded)
    and the `cookie` header is kept besides `cookies`. AWS_IAM callers are not identified
    locally, so `requestContext.authorizer.iam` is never filled.
    """
    url = url_match.url
    headers, cookies = v2_headers(request, keep_cookie=True)
    raw_query = request.query_string.decode("utf-8", "replace")
    body, encoded = encode_body(request.body, not text_type(request.header("content-type")))
    ms = _arrival_ms(request)
    context: dict[str, Any] = {
        "accountId": _URL_ANONYMOUS if url.auth_type == "NONE" else identity.account_id,
        "apiId": url.url_id,
        "domainName": url_match.domain_name,
        "domainPrefix": url.url_id,
        "http": _v2_http(request, request.path),
        "requestId": request_id,
        "routeKey": DEFAULT_ROUTE,
        "stage": DEFAULT_STAGE,
        "time": clf_time(ms),
        "timeEpoch": ms,
    }
    event = _v2_event(DEFAULT_ROUTE, request.raw_path, raw_query, headers, cookies, context)
    return _with_body(event, body, encoded)


def _arrival_ms(request: HttpRequest) -> int:
    return request.received_ms or time.time_ns() // 1_000_000


def _first_label(domain: str) -> str:
    return domain.partition(".")[0]


def _in_stage(request: HttpRequest, match: RouteMatch) -> str:
    """The raw path below the stage: what REST calls `path` and routes are matched against."""
    if match.stage_in_path:
        return request.raw_path[len(match.stage.name) + 1 :] or "/"
    return request.raw_path


def _staged_path(request: HttpRequest, match: RouteMatch) -> str:
    """HTTP APIs' decoded path, always with `/{stage}` in front for a named stage.

    Powertools strips that prefix from `rawPath` unconditionally, so leaving it out for a request
    served at the root would cut the real path.
    """
    if match.stage_in_path or match.stage.name == DEFAULT_STAGE:
        return request.path
    return f"/{match.stage.name}{request.path}"


def _v2_http(request: HttpRequest, path: str) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": path,
        "protocol": f"HTTP/{request.http_version}",
        "sourceIp": request.source_ip,
        # Required by the 2.0 schema: an empty string when the client sent none.
        "userAgent": request.header("user-agent") or "",
    }


def _v2_event(
    route_key: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    cookies: list[str],
    context: dict[str, Any],
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
    }
    if cookies:
        event["cookies"] = cookies
    query = v2_query(raw_query) if raw_query else None
    if query:
        event["queryStringParameters"] = query
    return event


def _with_body(event: dict[str, Any], body: str | None, encoded: bool) -> dict[str, Any]:
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def _identity(
    request: HttpRequest,
    *,
    rest: bool,
    api_key: str | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": request.source_ip,
        "user": None,
        "userAgent": request.header("user-agent"),
        "userArn": None,
    }
    if rest:  # HTTP APIs have no API keys, so their 1.0 events lack the two fields
        identity["apiKey"] = api_key
        identity["apiKeyId"] = api_key_id
    return identity
