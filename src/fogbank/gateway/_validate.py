"""Request validation (REST APIs): required parameters and JSON Schema (draft 4) body models.

A method is validated when it names a request validator, or the API has a default one
(`x-amazon-apigateway-request-validator` at the top level). The validator says what to check:

- parameters (`validateRequestParameters`): each required `method.request.querystring.x` /
  `header.x` must be present, else 400 `{"message": "Missing required request parameters: [x, y]"}`;
- the body (`validateRequestBody`): the model for the request's media type (`application/json`
  when it sends none; the `$default` entry when no type matches) must accept the body, else
  400 `{"message": "Invalid request body"}`. An empty body is validated as `{}`; a body that is
  not JSON fails.

Both answers are `BadRequestException`s, of response types `BAD_REQUEST_PARAMETERS` and
`BAD_REQUEST_BODY`; parameters are checked first, as on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from fogbank.gateway._errors import GatewayError
from fogbank.gateway._event_parts import media_type
from fogbank.gateway._gateway_responses import VALIDATION_ERROR_NOTE
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import HttpRequest, HttpResponse, RouteMatch
from fogbank.model import Api, ApiKind, App, RouteValidation
from fogbank.model._validation import BUILTIN_MODELS, DEFAULT_CONTENT_TYPE

_PREFIX = "method.request."
_DEFAULT_MODEL = "$default"


class ValidateRequest:
    """The pipeline step: answers 400 when a REST method's validator refuses the request.

    Models are compiled once per app snapshot and model.
    """

    def __init__(self) -> None:
        self._validators: dict[tuple[str, str], Draft4Validator] = {}
        self._app: App | None = None

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch) or match.api.kind is not ApiKind.REST:
            return None
        management = match.api.management
        rules = management.route_validation.get(match.route.route_key)
        if rules is None:
            return None  # nothing declared: even the default validator has nothing to check
        name = rules.validator or management.default_validator
        validator = management.validators.get(name) if name is not None else None
        if validator is None:
            return None
        if validator.validate_parameters and rules.required_parameters:
            _check_parameters(exchange.request, match, rules.required_parameters)
        if validator.validate_body and rules.request_models:
            self._check_body(exchange, match, rules)
        return None

    def _check_body(self, exchange: Exchange, match: RouteMatch, rules: RouteValidation) -> None:
        request = exchange.request
        content_type = media_type(request.header("content-type")) or DEFAULT_CONTENT_TYPE
        model = rules.request_models.get(content_type) or rules.request_models.get(_DEFAULT_MODEL)
        if model is None:
            return
        problems: list[str]
        try:
            document = orjson.loads(request.body) if request.body.strip() else {}
        except orjson.JSONDecodeError as exc:
            problems = [f"the body is not JSON: {exc}"]
        else:
            validator = self._validator(exchange.app, match.api, model)
            problems = [_described(error) for error in validator.iter_errors(document)]
        if problems:
            exchange.notes[VALIDATION_ERROR_NOTE] = f"[{', '.join(problems)}]"
            raise GatewayError(
                400, "Invalid request body", "BadRequestException", response_type="BAD_REQUEST_BODY"
            )

    def _validator(self, app: App, api: Api, model: str) -> Draft4Validator:
        if app is not self._app:
            self._validators.clear()
            self._app = app
        key = (api.api_id, model)
        found = self._validators.get(key)
        if found is None:
            found = self._validators[key] = Draft4Validator(_rooted(api.management.models, model))
        return found


def _check_parameters(request: HttpRequest, match: RouteMatch, required: tuple[str, ...]) -> None:
    missing: list[str] = []
    query: set[str] | None = None
    for parameter in required:
        location, _, name = parameter[len(_PREFIX) :].partition(".")
        if location in ("querystring", "multivaluequerystring"):
            if query is None:
                raw = request.query_string.decode("utf-8", "replace")
                query = {key for key, _ in parse_qsl(raw, keep_blank_values=True)}
            present = name in query
        elif location in ("header", "multivalueheader"):
            present = request.header(name.lower()) is not None
        else:
            present = bool(match.path_params.get(name))
        if not present:
            missing.append(name)
    if missing:
        raise GatewayError(
            400,
            f"Missing required request parameters: [{', '.join(missing)}]",
            "BadRequestException",
            response_type="BAD_REQUEST_PARAMETERS",
        )


def _rooted(models: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Any]:
    """The model as a root schema whose `definitions` hold every model it may refer to.

    The loader wrote every reference to another model as `#/definitions/<name>`; models' own
    local definitions stay reachable, the model's own winning over any other name.
    """
    schema = models.get(name) or BUILTIN_MODELS[name]
    definitions: dict[str, Any] = dict(BUILTIN_MODELS)
    for other in models.values():
        local = other.get("definitions")
        if isinstance(local, dict):
            definitions.update(local)
    definitions.update(models)
    own = schema.get("definitions")
    if isinstance(own, dict):
        definitions.update(own)
    return {**schema, "definitions": definitions}


def _described(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{error.message} at /{where}" if where else str(error.message)
