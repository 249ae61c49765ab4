"""Custom gateway responses (REST APIs): the error renderer every gateway error goes through.

An error's response type (`UNAUTHORIZED`, `THROTTLED`, ... see `GatewayError.response_type`)
selects the API's custom response of that type, else its `DEFAULT_4XX` / `DEFAULT_5XX` by status,
else AWS's own answer. A custom response may set the status, add headers (literals, or values
taken from the request, the stage variables or the context) and replace the body with a
template in which these are substituted (no other VTL runs):

- `$context.error.message`, `$context.error.messageString` (the message as a JSON string),
  `$context.error.responseType`, `$context.error.validationErrorString`;
- `$context.requestId`, `$context.apiId`, `$context.stage`, `$context.httpMethod`,
  `$context.resourcePath`, `$context.path`, `$context.domainName`,
  `$context.identity.sourceIp`, `$context.identity.userAgent`;
- `$stageVariables.<name>`; `${...}` spellings too. Unknown references become empty text.

HTTP APIs have no gateway responses: their errors always take AWS's default shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson

from fogbank.gateway._errors import GatewayError
from fogbank.gateway._event_parts import media_type
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._select import EXECUTE_API
from fogbank.gateway._types import HttpRequest, HttpResponse, RouteMatch
from fogbank.model import Api, ApiKind, GatewayResponse, Stage

GATEWAY_ERROR_NOTE = "gateway_error"
"""`exchange.notes` key: the `GatewayError` the request ended with (the cache does not store it)."""
VALIDATION_ERROR_NOTE = "validation_error"
"""`exchange.notes` key: why the body failed validation (`$context.error.validationErrorString`)."""

_REFERENCE = re.compile(
    r"\$(?:\{(context|stageVariables)\.([\w.]+)\}|(context|stageVariables)\.(\w+(?:\.\w+)*))"
)
_JSON = "application/json"


def render_gateway_response(exchange: Exchange, error: GatewayError) -> HttpResponse:
    """The pipeline's error renderer: AWS's error, as the API's gateway responses reshape it."""
    exchange.notes[GATEWAY_ERROR_NOTE] = error
    response = error.response(exchange.kind, exchange.request_id)
    if exchange.kind is not ApiKind.REST:
        return response
    target = _target(exchange)
    if target is None or not target[0].management.gateway_responses:
        return response
    api, stage = target
    responses = api.management.gateway_responses
    fallback = "DEFAULT_5XX" if error.status >= 500 else "DEFAULT_4XX"
    custom = responses.get(error.response_type) or responses.get(fallback)
    if custom is None:
        return response
    return _customised(response, custom, _Values(exchange, error, api, stage))


class _Values:
    """What a template or a header mapping may refer to, for one failed request."""

    def __init__(self, exchange: Exchange, error: GatewayError, api: Api, stage: Stage | None):
        request = exchange.request
        match = exchange.match if isinstance(exchange.match, RouteMatch) else None
        self.request = request
        self.match = match
        self.variables: Mapping[str, str] = stage.variables if stage is not None else {}
        self.context = {
            "error.message": error.message,
            "error.messageString": orjson.dumps(error.message).decode(),
            "error.responseType": error.response_type,
            "error.validationErrorString": str(exchange.notes.get(VALIDATION_ERROR_NOTE, "")),
            "requestId": exchange.request_id,
            "apiId": api.api_id,
            "stage": stage.name if stage is not None else "",
            "httpMethod": request.method,
            "resourcePath": match.route.path if match is not None else "",
            "path": request.raw_path,
            "domainName": request.host,
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header("user-agent") or "",
        }

    def substitute(self, template: str) -> str:
        def value(found: re.Match[str]) -> str:
            scope = found[1] or found[3]
            name = found[2] or found[4]
            source = self.context if scope == "context" else self.variables
            return source.get(name, "")

        return _REFERENCE.sub(value, template) if "$" in template else template

    def header(self, mapping: str) -> str | None:
        """A header's value: a literal, or the request / stage / context value it refers to."""
        scope, _, name = mapping.partition(".")
        if scope == "context":
            return self.context.get(name)
        if scope == "stageVariables":
            return self.variables.get(name)
        if scope != "method" or not name.startswith("request."):
            return mapping
        location, _, name = name[len("request.") :].partition(".")
        if location == "header":
            return self.request.header(name.lower())
        if location in ("querystring", "multivaluequerystring"):
            values = [v for k, v in parse_qsl(self.request.query_string.decode()) if k == name]
            return ",".join(values) if values else None
        if location == "path" and self.match is not None:
            return self.match.path_params.get(name)
        return None


def _customised(response: HttpResponse, custom: GatewayResponse, values: _Values) -> HttpResponse:
    if custom.status_code is not None:
        response.status = custom.status_code
    chosen = _template(custom.templates, values.request)
    if chosen is not None:
        content_type, template = chosen
        response.body = values.substitute(template).encode()
        _set_header(response, "content-type", content_type)
    for name, mapping in custom.headers.items():
        value = values.header(mapping)
        if value is not None:
            _set_header(response, name.lower(), value)
    return response


def _template(templates: Mapping[str, str], request: HttpRequest) -> tuple[str, str] | None:
    """The template for the media type the client accepts, else JSON's, else the first."""
    if not templates:
        return None
    accepted = {media_type(part) for part in (request.header("accept") or "").split(",")}
    for content_type, template in templates.items():
        if media_type(content_type) in accepted:
            return content_type, template
    if _JSON in templates:
        return _JSON, templates[_JSON]
    return next(iter(templates.items()))


def _set_header(response: HttpResponse, name: str, value: str) -> None:
    response.headers[:] = [(k, v) for k, v in response.headers if k != name]
    response.headers.append((name, value))


def _target(exchange: Exchange) -> tuple[Api, Stage | None] | None:
    """The API (and stage) a failed request was for, when that can be told.

    A matched request names both. An unmatched one (403 `Missing Authentication Token`) is for
    the API whose host it came to (`{apiId}.execute-api.localhost`), or on the node's host for
    the one REST API that has the stage the path starts with, or the only REST API there is.
    """
    match = exchange.match
    if isinstance(match, RouteMatch):
        return match.api, match.stage
    request, apis = exchange.request, exchange.app.apis
    first = request.raw_path.split("/", 2)[1] if request.raw_path.startswith("/") else ""
    labels = request.host.split(".")
    if len(labels) >= 3 and labels[1] == EXECUTE_API and labels[-1] == "localhost":
        api = apis.get(labels[0])
        return (api, api.stages.get(first)) if api is not None else None
    rest = [api for api in apis.values() if api.kind is ApiKind.REST]
    staged = [api for api in rest if first in api.stages]
    if len(staged) == 1:
        return staged[0], staged[0].stages[first]
    return (rest[0], None) if len(rest) == 1 else None
