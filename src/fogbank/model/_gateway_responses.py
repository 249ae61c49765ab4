"""A REST API's custom gateway responses: status, headers and body template per response type.

Two spellings: the OpenAPI extension `x-amazon-apigateway-gateway-responses` (SAM's
`GatewayResponses` on an `AWS::Serverless::Api` becomes this) and `AWS::ApiGateway::GatewayResponse`
resources; a resource replaces the extension's entry for the same type, as deploying it would.

Header values are either a `'literal'` (kept without its quotes) or a reference to the request,
the stage or the context (`method.request.header.Origin`, `method.request.querystring.x`,
`method.request.path.id`, `stageVariables.name`, `context.requestId`), kept as written and
resolved by the gateway for each response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fogbank.model._integrations import Where
from fogbank.model._management import GatewayResponse

GATEWAY_RESPONSE = "AWS::ApiGateway::GatewayResponse"
EXTENSION = "x-amazon-apigateway-gateway-responses"

RESPONSE_TYPES = frozenset(
    {
        "ACCESS_DENIED",
        "API_CONFIGURATION_ERROR",
        "AUTHORIZER_CONFIGURATION_ERROR",
        "AUTHORIZER_FAILURE",
        "BAD_REQUEST_BODY",
        "BAD_REQUEST_PARAMETERS",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "EXPIRED_TOKEN",
        "INTEGRATION_FAILURE",
        "INTEGRATION_TIMEOUT",
        "INVALID_API_KEY",
        "INVALID_SIGNATURE",
        "MISSING_AUTHENTICATION_TOKEN",
        "QUOTA_EXCEEDED",
        "REQUEST_TOO_LARGE",
        "RESOURCE_NOT_FOUND",
        "THROTTLED",
        "UNAUTHORIZED",
        "UNSUPPORTED_MEDIA_TYPE",
        "WAF_FILTERED",
    }
)
"""Every `responseType` API Gateway accepts (botocore's `GatewayResponseType`)."""

HEADER_TARGET = "gatewayresponse.header."
HEADER_SOURCE = re.compile(
    r"(method\.request\.(header|querystring|multivaluequerystring|path)|stageVariables|context)"
    r"\.[A-Za-z0-9_.:-]+"
)
"""A header value that is taken from the request, the stage or the context."""
_STATUS = re.compile(r"[1-5]\d\d")

# (logical id, where, properties) of one resource, as `_apis` lists an API's children.
Child = tuple[str, Where, Mapping[str, Any]]


def read_gateway_responses(
    body: Any, body_at: Where, resources: Sequence[Child] = ()
) -> dict[str, GatewayResponse]:
    """Response type -> custom response, from the OpenAPI body (or None) and the resources.

    Raises `TemplateError` for an unknown response type, a status that is not 1xx-5xx, or a
    header mapping that is neither a quoted literal nor a request, stage or context reference.
    """
    found: dict[str, GatewayResponse] = {}
    extension = body.get(EXTENSION) if isinstance(body, dict) else None
    for kind, raw in body_at.at(EXTENSION).mapping(extension).items():
        at = body_at.at(EXTENSION, str(kind))
        spec = at.mapping(raw)
        found[str(kind)] = _response(
            str(kind),
            at,
            (spec.get("statusCode"), at.at("statusCode")),
            (spec.get("responseParameters"), at.at("responseParameters")),
            (spec.get("responseTemplates"), at.at("responseTemplates")),
        )
    for _, at, props in resources:
        kind = at.at("ResponseType").text(props.get("ResponseType"), default="")
        found[kind] = _response(
            kind,
            at.at("ResponseType"),
            (props.get("StatusCode"), at.at("StatusCode")),
            (props.get("ResponseParameters"), at.at("ResponseParameters")),
            (props.get("ResponseTemplates"), at.at("ResponseTemplates")),
        )
    return found


def _response(
    kind: str,
    kind_at: Where,
    status: tuple[Any, Where],
    parameters: tuple[Any, Where],
    templates: tuple[Any, Where],
) -> GatewayResponse:
    if kind not in RESPONSE_TYPES:
        raise kind_at.error(f"unknown gateway response type {kind or '(none)'}")
    raw_status, status_at = status
    code = None
    if raw_status is not None:
        text = status_at.text(raw_status)
        if not _STATUS.fullmatch(text):
            raise status_at.error(f"expected an HTTP status code (100-599), got {text}")
        code = int(text)
    raw_parameters, parameters_at = parameters
    headers: dict[str, str] = {}
    for target, source in parameters_at.string_map(raw_parameters).items():
        at = parameters_at.at(target)
        if not target.startswith(HEADER_TARGET) or target == HEADER_TARGET:
            raise at.error(f"expected {HEADER_TARGET}<name>, got {target}")
        headers[target[len(HEADER_TARGET) :]] = _header_value(source, at)
    raw_templates, templates_at = templates
    return GatewayResponse(
        response_type=kind,
        status_code=code,
        headers=headers,
        templates=templates_at.string_map(raw_templates),
    )


def _header_value(source: str, at: Where) -> str:
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    if HEADER_SOURCE.fullmatch(source):
        return source
    raise at.error(
        f"expected a 'quoted literal' or a method.request, stageVariables or context reference,"
        f" got {source}"
    )
