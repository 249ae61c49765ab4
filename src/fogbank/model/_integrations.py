"""Integrations, CORS settings and route paths, as API Gateway reads them from a template.

One integration is spelt three ways: `x-amazon-apigateway-integration` in an OpenAPI body (`type`,
`uri`, `httpMethod`, ...), the `Integration` of an `AWS::ApiGateway::Method` (`Type`, `Uri`,
`IntegrationHttpMethod`, ...) and an `AWS::ApiGatewayV2::Integration` (`IntegrationType`,
`IntegrationUri`, `IntegrationMethod`, ...). `Fields` names the keys of each spelling, so that one
reader checks all three the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from fogbank._errors import TemplateError
from fogbank.model._api import (
    ANY,
    DEFAULT_ROUTE,
    HTTP_TIMEOUT_MS,
    REST_TIMEOUT_MS,
    ApiKind,
    Cors,
    Integration,
    IntegrationResponse,
    IntegrationType,
)
from fogbank.model._intrinsics import text
from fogbank.model._service_arns import CLOUD_MAP_SERVICE_ARN, LOAD_BALANCER_LISTENER_ARN

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", ANY})
STAGE_VARIABLE = "${stageVariables."
MIN_TIMEOUT_MS = 50

_INVOCATIONS = re.compile(
    r"arn:[\w-]+:apigateway:[\w-]*:lambda:path/[\d-]+/functions/(?P<target>.+)/invocations"
)
FUNCTION_ARN = re.compile(r"arn:[\w-]+:lambda:[\w-]*:\d*:function:(?P<ref>.+)")
_FUNCTION_REF = re.compile(r"(?P<name>[\w.-]+)(?::(?P<qualifier>\$LATEST|[\w-]+))?")
_PARAMETER = re.compile(r"\{[^{}/+]+\+?\}")
_TRANSFER_MODES = ("BUFFERED", "STREAM")
_PAYLOAD_FORMATS = ("1.0", "2.0")


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a template (file, resource, property path), to read values with one-line errors."""

    file: str
    resource: str | None = None
    prop: str = ""

    def at(self, *keys: str) -> Where:
        return Where(self.file, self.resource, ".".join(k for k in (self.prop, *keys) if k))

    def error(self, message: str) -> TemplateError:
        return TemplateError(
            message, file=self.file, resource=self.resource, prop=self.prop or None
        )

    def text(self, value: Any, default: str | None = None) -> str:
        if value is None and default is not None:
            return default
        try:
            return text(value)
        except TypeError:
            raise self.error(f"expected a string, got {value!r}") from None

    def mapping(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping, got {value!r}")
        return value

    def strings(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(f"expected a list of strings, got {value!r}")
        return tuple(self.text(item) for item in value)

    def string_map(self, value: Any) -> dict[str, str]:
        return {str(key): self.at(str(key)).text(item) for key, item in self.mapping(value).items()}

    def number(self, value: Any, *, low: int, high: int | None = None) -> int:
        try:
            number = int(text(value))
        except (TypeError, ValueError):
            raise self.error(f"expected a whole number, got {value!r}") from None
        if number < low:
            raise self.error(f"{number} is below the minimum, {low}")
        if high is not None and number > high:
            raise self.error(f"{number} is above the maximum, {high}")
        return number

    def flag(self, value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(f"expected true or false, got {value!r}")


@dataclass(frozen=True, slots=True)
class Fields:
    """The keys one spelling of an integration uses."""

    type: str
    uri: str
    method: str
    payload: str
    timeout: str
    request_parameters: str
    request_templates: str
    responses: str
    transfer_mode: str
    connection: str
    subtype: str


OPENAPI_FIELDS = Fields(
    type="type",
    uri="uri",
    method="httpMethod",
    payload="payloadFormatVersion",
    timeout="timeoutInMillis",
    request_parameters="requestParameters",
    request_templates="requestTemplates",
    responses="responses",
    transfer_mode="responseTransferMode",
    connection="connectionType",
    subtype="integrationSubtype",
)
# REST Methods have no payload version or subtype, HTTP APIs no templates or responses: those
# keys are simply never present.
METHOD_FIELDS = Fields(
    type="Type",
    uri="Uri",
    method="IntegrationHttpMethod",
    payload="PayloadFormatVersion",
    timeout="TimeoutInMillis",
    request_parameters="RequestParameters",
    request_templates="RequestTemplates",
    responses="IntegrationResponses",
    transfer_mode="ResponseTransferMode",
    connection="ConnectionType",
    subtype="IntegrationSubtype",
)
V2_FIELDS = Fields(
    type="IntegrationType",
    uri="IntegrationUri",
    method="IntegrationMethod",
    payload="PayloadFormatVersion",
    timeout="TimeoutInMillis",
    request_parameters="RequestParameters",
    request_templates="RequestTemplates",
    responses="IntegrationResponses",
    transfer_mode="ResponseTransferMode",
    connection="ConnectionType",
    subtype="IntegrationSubtype",
)


def read_integration(
    spec: Mapping[str, Any],
    fields: Fields,
    kind: ApiKind,
    where: Where,
    functions: Mapping[str, str],
    *,
    cloud_map: Set[str] | None = None,
) -> Integration | str:
    """The integration `spec` describes, or why fogbank does not serve it (a short phrase).

    `functions` maps every name an integration may use for a template function (its name, its
    logical id) to the function's name; `cloud_map` holds the Cloud Map service ids a private
    integration may name (None: any, as services may be created later).
    """
    kind_at = where.at(fields.type)
    raw_type = kind_at.text(spec.get(fields.type), default="").upper()
    if not raw_type:
        raise kind_at.error("the integration type is required")
    private = spec.get(fields.connection) == "VPC_LINK"
    if private and kind is ApiKind.REST:
        return "VPC link integration"  # REST VPC links lead to a load balancer
    if private and raw_type != "HTTP_PROXY":
        raise kind_at.error(f"a VPC_LINK integration must be HTTP_PROXY, not {raw_type}")
    if spec.get(fields.subtype) is not None:
        return "AWS service integration"
    if kind is ApiKind.HTTP and raw_type not in ("AWS_PROXY", "HTTP_PROXY"):
        raise kind_at.error(
            f"HTTP APIs have only AWS_PROXY and HTTP_PROXY integrations, not {raw_type}"
        )
    uri_at = where.at(fields.uri)
    if raw_type == "AWS":
        lambda_uri = _INVOCATIONS.fullmatch(uri_at.text(spec.get(fields.uri), default=""))
        return "non-proxy Lambda integration" if lambda_uri else "AWS service integration"
    if raw_type == "HTTP":
        return "non-proxy HTTP integration"
    if raw_type not in ("AWS_PROXY", "HTTP_PROXY", "MOCK"):
        raise kind_at.error(f"unknown integration type {raw_type}")
    default_timeout = REST_TIMEOUT_MS if kind is ApiKind.REST else HTTP_TIMEOUT_MS
    timeout = spec.get(fields.timeout)
    # REST APIs may have their 29 s limit raised by quota; HTTP APIs stop at 30 s.
    high = None if kind is ApiKind.REST else HTTP_TIMEOUT_MS
    mode_at = where.at(fields.transfer_mode)
    mode = mode_at.text(spec.get(fields.transfer_mode), default="BUFFERED").upper()
    if mode not in _TRANSFER_MODES:
        raise mode_at.error(f"expected BUFFERED or STREAM, got {mode}")
    common: dict[str, Any] = {
        "timeout_ms": default_timeout
        if timeout is None
        else where.at(fields.timeout).number(timeout, low=MIN_TIMEOUT_MS, high=high),
        "request_parameters": where.at(fields.request_parameters).string_map(
            spec.get(fields.request_parameters)
        ),
        "response_transfer_mode": mode,
    }
    if raw_type == "MOCK":
        return Integration(
            IntegrationType.MOCK,
            request_templates=where.at(fields.request_templates).string_map(
                spec.get(fields.request_templates)
            ),
            responses=_responses(spec.get(fields.responses), where.at(fields.responses), fields),
            **common,
        )
    uri = uri_at.text(spec.get(fields.uri), default="")
    if not uri:
        raise uri_at.error(f"a {raw_type} integration needs a URI")
    if raw_type == "HTTP_PROXY":
        if not private and not uri.startswith(("http://", "https://", STAGE_VARIABLE)):
            raise uri_at.error(f"an HTTP_PROXY integration needs an http(s) URL, got {uri}")
        method_at = where.at(fields.method)
        method = method_at.text(spec.get(fields.method), default=ANY).upper()
        if method not in METHODS:
            raise method_at.error(f"unknown HTTP method {method}")
        if private:
            return _private(uri, uri_at, cloud_map, http_method=method, **common)
        return Integration(IntegrationType.HTTP_PROXY, uri=uri, http_method=method, **common)
    name, qualifier = lambda_target(uri, uri_at, functions)
    payload = "1.0"
    if kind is ApiKind.HTTP:
        # SAM always writes one; API Gateway's API takes a missing version as 1.0.
        payload = where.at(fields.payload).text(spec.get(fields.payload), default="1.0")
        if payload not in _PAYLOAD_FORMATS:
            raise where.at(fields.payload).error(f"expected 1.0 or 2.0, got {payload}")
    return Integration(
        IntegrationType.AWS_PROXY,
        function_name=name,
        qualifier=qualifier,
        payload_format_version=payload,
        **common,
    )


def lambda_target(uri: str, where: Where, functions: Mapping[str, str]) -> tuple[str, str | None]:
    """The function (name, qualifier) a Lambda integration URI or function ARN invokes.

    A reference made of stage variables is returned whole as the name: it can only be resolved
    per request, once the stage is known.
    """
    invocations = _INVOCATIONS.fullmatch(uri)
    target = invocations["target"] if invocations else uri
    arn = FUNCTION_ARN.fullmatch(target)
    reference = arn["ref"] if arn else target
    if STAGE_VARIABLE in reference:
        return reference, None
    parts = _FUNCTION_REF.fullmatch(reference)
    if parts is None or not (invocations or arn):
        raise where.error(f"{uri} is not a Lambda function ARN or invocation URI")
    name = functions.get(parts["name"])
    if name is None:
        raise where.error(f"function {parts['name']} is not defined in this template")
    return name, parts["qualifier"]


def _private(
    uri: str, where: Where, cloud_map: Set[str] | None, **fields: Any
) -> Integration | str:
    """An HTTP API private integration: a Cloud Map service's instances, named by its ARN."""
    match = CLOUD_MAP_SERVICE_ARN.fullmatch(uri)
    if match is None and LOAD_BALANCER_LISTENER_ARN.fullmatch(uri):
        return "VPC link integration to a load balancer"
    if match is None:
        raise where.error(
            f"a VPC_LINK integration needs a Cloud Map service ARN (!GetAtt Service.Arn), got {uri}"
        )
    if cloud_map is not None and match["id"] not in cloud_map:
        raise where.error(f"{uri} names no discovery service in this template")
    return Integration(IntegrationType.HTTP_PROXY, cloud_map_service=match["id"], **fields)


def _responses(value: Any, where: Where, fields: Fields) -> tuple[IntegrationResponse, ...]:
    """Integration responses: OpenAPI's `{pattern: {statusCode, ...}}` or CloudFormation's list."""
    if value is None:
        return ()
    openapi = fields is OPENAPI_FIELDS
    entries: list[tuple[Where, str, Any]]
    if openapi:
        # Keyed by selection pattern; `default` is the response for anything unmatched.
        entries = [
            (where.at(str(pattern)), "" if pattern == "default" else str(pattern), spec)
            for pattern, spec in where.mapping(value).items()
        ]
    elif isinstance(value, list):
        entries = [(where.at(str(i)), "", spec) for i, spec in enumerate(value)]
    else:
        raise where.error(f"expected a list of integration responses, got {value!r}")
    keys = ("statusCode", "responseParameters", "responseTemplates")
    if not openapi:
        keys = ("StatusCode", "ResponseParameters", "ResponseTemplates")
    responses = []
    for at, pattern, raw in entries:
        spec = at.mapping(raw)
        if not openapi:
            pattern = at.at("SelectionPattern").text(spec.get("SelectionPattern"), default="")
        responses.append(
            IntegrationResponse(
                status_code=at.at(keys[0]).text(spec.get(keys[0]), default="200"),
                selection_pattern=pattern,
                response_parameters=at.at(keys[1]).string_map(spec.get(keys[1])),
                response_templates=at.at(keys[2]).string_map(spec.get(keys[2])),
            )
        )
    return tuple(responses)


def read_cors(value: Any, where: Where, *, capitalized: bool) -> Cors:
    """CORS settings from `x-amazon-apigateway-cors` (camelCase) or a `CorsConfiguration` / `Cors`.

    A list left out allows nothing, as on AWS (the model's defaults are for programmatic use).
    """
    spec = where.mapping(value)

    def read(key: str) -> tuple[Any, Where]:
        name = key[0].upper() + key[1:] if capitalized else key
        return spec.get(name), where.at(name)

    def strings(key: str) -> tuple[str, ...]:
        raw, at = read(key)
        return at.strings(raw)

    max_age, age_at = read("maxAge")
    credentials, credentials_at = read("allowCredentials")
    return Cors(
        allow_origins=strings("allowOrigins"),
        allow_methods=strings("allowMethods"),
        allow_headers=strings("allowHeaders"),
        expose_headers=strings("exposeHeaders"),
        max_age=None if max_age is None else age_at.number(max_age, low=-1, high=86_400),
        allow_credentials=credentials_at.flag(credentials),
    )


def path_problem(path: str, kind: ApiKind) -> str | None:
    """What is wrong with a route path (`/items/{id}`, `/{proxy+}`), or None."""
    if kind is ApiKind.HTTP and path == DEFAULT_ROUTE:
        return None
    if not path.startswith("/"):
        return f"path {path} must start with /"
    segments = path[1:].split("/") if path != "/" else []
    for position, segment in enumerate(segments, 1):
        if not segment:
            return f"path {path} has an empty segment"
        if ("{" in segment or "}" in segment) and not _PARAMETER.fullmatch(segment):
            return (
                f"path {path}: {segment} is not a whole-segment parameter ({{name}} or {{name+}})"
            )
        if segment.endswith("+}") and position < len(segments):
            return f"path {path}: the greedy parameter {segment} must be the last segment"
    return None


def parse_route_key(key: str, where: Where) -> tuple[str, str]:
    """(method, path) of an HTTP API route key: `GET /items/{id}`, `ANY /{proxy+}` or `$default`."""
    if key == DEFAULT_ROUTE:
        return ANY, DEFAULT_ROUTE
    method, _, path = key.partition(" ")
    if method.upper() not in METHODS or not path.startswith("/") or " " in path:
        raise where.error(f"route key {key!r} must be $default or 'METHOD /path'")
    if problem := path_problem(path, ApiKind.HTTP):
        raise where.error(problem)
    return method.upper(), path


def route_access(where: Where, props: Mapping[str, Any]) -> dict[str, Any]:
    """`Route` keyword arguments from the access settings of a REST Method or an HTTP API Route."""
    authorizer, operation = props.get("AuthorizerId"), props.get("OperationName")
    return {
        "authorization_type": where.at("AuthorizationType")
        .text(props.get("AuthorizationType"), default="NONE")
        .upper(),
        "authorizer": None if authorizer is None else where.at("AuthorizerId").text(authorizer),
        "api_key_required": where.at("ApiKeyRequired").flag(props.get("ApiKeyRequired")),
        "operation_name": None if operation is None else where.at("OperationName").text(operation),
        "authorization_scopes": where.at("AuthorizationScopes").strings(
            props.get("AuthorizationScopes")
        ),
    }
