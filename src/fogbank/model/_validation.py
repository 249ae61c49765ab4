"""What a REST method asks of its requests: validator, body models, required parameters, cache keys.

API Gateway's "method request" declares the parameters a method takes, which of them are
required, which of them key the stage cache (`cacheKeyParameters`, the console's "Caching" box
beside each parameter) and the JSON Schema (draft 4) model of the body per content type. It is
written three ways, all read here:

- OpenAPI: `x-amazon-apigateway-request-validators` (named validators),
  `x-amazon-apigateway-request-validator` (the default at the top level, or an operation's own),
  models in `definitions` (2.0) or `components.schemas` (3.x), `parameters` with
  `required: true`, a body parameter's `schema` (2.0) or `requestBody.content` (3.x), and the
  integration's `cacheKeyParameters`. SAM's `Models`, `RequestModel` and `RequestParameters`
  arrive in this form.
- Resources: `AWS::ApiGateway::RequestValidator`, `AWS::ApiGateway::Model`, and a Method's
  `RequestValidatorId`, `RequestModels`, `RequestParameters` (`true` = required) and
  `Integration.CacheKeyParameters`.

Model references are normalised to `#/definitions/<name>`, whichever way they were written
(`#/components/schemas/X`, or API Gateway's `https://apigateway.amazonaws.com/restapis/{id}/models/X`),
so the gateway resolves every one against the API's models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from fogbank.model._api import ANY
from fogbank.model._integrations import Where
from fogbank.model._management import ApiManagement, RequestValidator, RouteValidation

REQUEST_VALIDATOR = "AWS::ApiGateway::RequestValidator"
MODEL = "AWS::ApiGateway::Model"

BUILTIN_MODELS: Mapping[str, Mapping[str, Any]] = {
    "Empty": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Empty Schema",
        "type": "object",
    },
    "Error": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Error Schema",
        "type": "object",
        "properties": {"message": {"type": "string"}},
    },
}
"""The two models every REST API has without declaring them."""

DEFAULT_CONTENT_TYPE = "application/json"
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
_ANY_METHOD = "x-amazon-apigateway-any-method"
_PARAMETER = re.compile(
    r"method\.request\.(querystring|multivaluequerystring|header|multivalueheader|path)\.[^.\s]+"
)
# Only these can be missing: a path parameter is there whenever the route matched.
_LOCATIONS = {"query": "querystring", "header": "header"}
_DEFINITIONS = "#/definitions/"
_COMPONENTS = "#/components/schemas/"
_MODEL_URL = re.compile(
    r"https://apigateway\.amazonaws\.com/restapis/[^/]+/models/(?P<name>[^/#]+)"
)

# (logical id, where, properties) of one resource, as `_apis` lists an API's children.
Child = tuple[str, Where, Mapping[str, Any]]
# (route key, where, properties) of one `AWS::ApiGateway::Method`.
MethodSpec = tuple[str, Where, Mapping[str, Any]]


def read_method_requests(
    body: Any,
    body_at: Where,
    *,
    validators: Sequence[Child] = (),
    models: Sequence[Child] = (),
    methods: Sequence[MethodSpec] = (),
) -> ApiManagement:
    """Validators, models, per-route validation and cache keys of one REST API.

    `body` is the API's OpenAPI definition (or None); the other arguments are its
    `RequestValidator`, `Model` and `Method` resources. Raises `TemplateError` for a validator
    or model that is named but not defined, a model that is not JSON Schema draft 4, and a
    malformed parameter name.
    """
    reader = _Reader()
    if isinstance(body, dict):
        reader.openapi(body, body_at)
    reader.resources(validators, models, methods)
    reader.check()
    return ApiManagement(
        validators=reader.validators,
        models=reader.models,
        route_validation=reader.routes,
        default_validator=reader.default_validator,
        cache_key_parameters=reader.cache_keys,
    )


class _Reader:
    def __init__(self) -> None:
        self.validators: dict[str, RequestValidator] = {}
        self.models: dict[str, Mapping[str, Any]] = {}
        self.routes: dict[str, RouteValidation] = {}
        self.default_validator: str | None = None
        self.cache_keys: dict[str, tuple[str, ...]] = {}
        self._model_at: dict[str, Where] = {}
        # (where to point, model name) of every body model a route names, checked at the end:
        # a route may name a model defined further on (or by a resource).
        self._wanted: list[tuple[Where, str]] = []

    # OpenAPI

    def openapi(self, body: Mapping[str, Any], at: Where) -> None:
        key = "x-amazon-apigateway-request-validators"
        for name, raw in at.at(key).mapping(body.get(key)).items():
            spec = at.at(key, str(name)).mapping(raw)
            self.validators[str(name)] = RequestValidator(
                name=str(name),
                validate_body=at.at(key, str(name), "validateRequestBody").flag(
                    spec.get("validateRequestBody")
                ),
                validate_parameters=at.at(key, str(name), "validateRequestParameters").flag(
                    spec.get("validateRequestParameters")
                ),
            )
        components = body.get("components")
        if isinstance(components, dict) and components.get("schemas") is not None:
            self._add_models(components["schemas"], at.at("components", "schemas"))
        self._add_models(body.get("definitions"), at.at("definitions"))
        default_key = "x-amazon-apigateway-request-validator"
        if body.get(default_key) is not None:
            self.default_validator = self._validator(body[default_key], at.at(default_key))
        consumes = at.at("consumes").strings(body.get("consumes")) or (DEFAULT_CONTENT_TYPE,)
        shared = body.get("parameters")
        for path, item in at.at("paths").mapping(body.get("paths")).items():
            path_at = at.at("paths", str(path))
            path_item = path_at.mapping(item)
            for name, raw in path_item.items():
                if name != _ANY_METHOD and name not in _OPERATIONS:
                    continue  # path-level parameters, summary, other extensions
                method = ANY if name == _ANY_METHOD else str(name).upper()
                op_at = path_at.at(str(name))
                operation = op_at.mapping(raw)
                self._operation(
                    f"{method} {path}",
                    operation,
                    op_at,
                    _parameters(
                        path_item.get("parameters"), operation.get("parameters"), body, shared
                    ),
                    op_at.at("consumes").strings(operation.get("consumes")) or consumes,
                )

    def _operation(
        self,
        route_key: str,
        operation: Mapping[str, Any],
        at: Where,
        parameters: list[Mapping[str, Any]],
        consumes: tuple[str, ...],
    ) -> None:
        validator_key = "x-amazon-apigateway-request-validator"
        validator = None
        if operation.get(validator_key) is not None:
            validator = self._validator(operation[validator_key], at.at(validator_key))
        required: list[str] = []
        request_models: dict[str, str] = {}
        for parameter in parameters:
            where = parameter.get("in")
            if where == "body" and parameter.get("schema") is not None:
                model = self._schema_model(parameter["schema"], route_key, at.at("parameters"))
                request_models.update(dict.fromkeys(consumes, model))
            elif where in _LOCATIONS and parameter.get("required") is True:
                required.append(f"method.request.{_LOCATIONS[where]}.{parameter.get('name')}")
        body = operation.get("requestBody")
        if isinstance(body, dict):
            body_at = at.at("requestBody", "content")
            for content_type, media in body_at.mapping(body.get("content")).items():
                schema = media.get("schema") if isinstance(media, dict) else None
                if schema is not None:
                    at_type = body_at.at(str(content_type))
                    request_models[str(content_type)] = self._schema_model(
                        schema, f"{route_key} {content_type}", at_type
                    )
        self._route(route_key, validator, request_models, required, at)
        spec = operation.get("x-amazon-apigateway-integration")
        if isinstance(spec, dict) and spec.get("cacheKeyParameters") is not None:
            keys_at = at.at("x-amazon-apigateway-integration", "cacheKeyParameters")
            self.cache_keys[route_key] = _parameter_names(
                keys_at.strings(spec["cacheKeyParameters"]), keys_at
            )

    def _schema_model(self, schema: Any, name: str, at: Where) -> str:
        """The model a body schema names (`$ref`), or a new model for a schema written inline."""
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            referenced = _model_name(schema["$ref"])
            if referenced is None:
                raise at.error(f"{schema['$ref']} does not name a model of this API")
            return referenced
        self._add_model(name, schema, at)
        return name

    # Resources

    def resources(
        self, validators: Sequence[Child], models: Sequence[Child], methods: Sequence[MethodSpec]
    ) -> None:
        for logical_id, at, props in validators:
            # Methods point at a validator with `!Ref`, which gives its logical id.
            self.validators[logical_id] = RequestValidator(
                name=at.at("Name").text(props.get("Name"), default=logical_id),
                validate_body=at.at("ValidateRequestBody").flag(props.get("ValidateRequestBody")),
                validate_parameters=at.at("ValidateRequestParameters").flag(
                    props.get("ValidateRequestParameters")
                ),
            )
        # `!Ref` to a Model gives its logical id; requests and schemas must use its name.
        names = {
            logical_id: at.at("Name").text(props.get("Name"), default=logical_id)
            for logical_id, at, props in models
        }
        for logical_id, at, props in models:
            schema = props.get("Schema", {})
            if isinstance(schema, str):
                try:
                    schema = json.loads(schema)
                except ValueError as exc:
                    raise at.at("Schema").error(f"the schema is not valid JSON: {exc}") from None
            self._add_model(names[logical_id], schema, at.at("Schema"), names)
        for route_key, at, props in methods:
            validator = None
            if props.get("RequestValidatorId") is not None:
                validator = self._validator(
                    props["RequestValidatorId"], at.at("RequestValidatorId")
                )
            models_at = at.at("RequestModels")
            request_models = {
                content_type: names.get(ref, ref)
                for content_type, ref in models_at.string_map(props.get("RequestModels")).items()
            }
            params_at = at.at("RequestParameters")
            declared = params_at.mapping(props.get("RequestParameters"))
            _parameter_names(list(declared), params_at)
            required = [
                name
                for name, flag in declared.items()
                if params_at.at(name).flag(flag) and not name.startswith("method.request.path.")
            ]
            self._route(route_key, validator, request_models, required, models_at)
            keys_at = at.at("Integration", "CacheKeyParameters")
            integration = props.get("Integration")
            keys = integration.get("CacheKeyParameters") if isinstance(integration, dict) else None
            if keys is not None:
                self.cache_keys[route_key] = _parameter_names(keys_at.strings(keys), keys_at)

    # Shared

    def _validator(self, value: Any, at: Where) -> str:
        name = at.text(value)
        if name not in self.validators:
            raise at.error(f"request validator {name} is not defined")
        return name

    def _route(
        self,
        route_key: str,
        validator: str | None,
        request_models: dict[str, str],
        required: list[str],
        at: Where,
    ) -> None:
        self._wanted.extend((at, model) for model in request_models.values())
        if validator is not None or request_models or required:
            self.routes[route_key] = RouteValidation(
                validator=validator,
                request_models=request_models,
                required_parameters=tuple(required),
            )

    def _add_models(self, value: Any, at: Where) -> None:
        for name, schema in at.mapping(value).items():
            self._add_model(str(name), schema, at.at(str(name)))

    def _add_model(
        self, name: str, schema: Any, at: Where, aliases: Mapping[str, str] | None = None
    ) -> None:
        if not isinstance(schema, dict):
            raise at.error(f"a model must be a JSON Schema object, got {schema!r}")
        normalised = _normalised(schema, aliases or {})
        try:
            Draft4Validator.check_schema(normalised)
        except SchemaError as exc:
            raise at.error(f"not a JSON Schema (draft 4): {exc.message}") from None
        self.models[name] = normalised
        self._model_at[name] = at

    def check(self) -> None:
        """Every model a route or a `$ref` names must exist (or be the model's own definition)."""
        for at, model in self._wanted:
            if model not in self.models and model not in BUILTIN_MODELS:
                raise at.error(f"model {model} is not defined")
        for name, schema in self.models.items():
            own = schema.get("definitions")
            local = own.keys() if isinstance(own, dict) else ()
            for ref in _refs(schema):
                target = _model_name(ref)
                if target is None:
                    continue  # a JSON pointer into the model itself
                if (
                    target not in self.models
                    and target not in local
                    and target not in BUILTIN_MODELS
                ):
                    raise self._model_at[name].error(f"{ref} names no model of this API")


def _parameters(
    path_level: Any, operation: Any, body: Mapping[str, Any], shared: Any
) -> list[Mapping[str, Any]]:
    """An operation's parameters: the path's, overridden by the operation's own (by name+in)."""
    found: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for group in (path_level, operation):
        for raw in group if isinstance(group, list) else ():
            parameter = _dereferenced(raw, body, shared)
            if isinstance(parameter, dict):
                found[parameter.get("name"), parameter.get("in")] = parameter
    return list(found.values())


def _dereferenced(raw: Any, body: Mapping[str, Any], shared: Any) -> Any:
    """A parameter, following `#/parameters/x` (2.0) or `#/components/parameters/x` (3.x)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("$ref"), str):
        return raw
    ref: str = raw["$ref"]
    pool = shared
    if ref.startswith("#/components/parameters/"):
        components = body.get("components")
        pool = components.get("parameters") if isinstance(components, dict) else None
    return pool.get(ref.rpartition("/")[2]) if isinstance(pool, dict) else None


def _parameter_names(names: Sequence[str], at: Where) -> tuple[str, ...]:
    for name in names:
        if not _PARAMETER.fullmatch(name):
            raise at.error(
                f"{name} is not a method request parameter"
                " (method.request.querystring|header|path.<name>)"
            )
    return tuple(names)


def _model_name(ref: str) -> str | None:
    """The model a reference points into, or None for a pointer that is not to a model."""
    normal = _normal_ref(ref)
    if not normal.startswith(_DEFINITIONS):
        return None
    return normal[len(_DEFINITIONS) :].partition("/")[0] or None


def _normal_ref(ref: str, aliases: Mapping[str, str] | None = None) -> str:
    """`#/components/schemas/X/...` and API Gateway's model URLs as `#/definitions/X/...`.

    `aliases` maps a Model resource's logical id (what `${Model}` gives in a `!Sub`) to its name.
    """
    if ref.startswith(_COMPONENTS):
        return _DEFINITIONS + ref[len(_COMPONENTS) :]
    found = _MODEL_URL.fullmatch(ref)
    if found is None:
        return ref
    name = found["name"]
    return _DEFINITIONS + (aliases or {}).get(name, name)


def _normalised(schema: Any, aliases: Mapping[str, str]) -> Any:
    """The schema with every reference to another model written `#/definitions/<name>`."""
    if isinstance(schema, dict):
        out = {key: _normalised(value, aliases) for key, value in schema.items()}
        if isinstance(schema.get("$ref"), str):
            out["$ref"] = _normal_ref(schema["$ref"], aliases)
        return out
    if isinstance(schema, list):
        return [_normalised(item, aliases) for item in schema]
    return schema


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("$ref"), str):
            yield schema["$ref"]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)
