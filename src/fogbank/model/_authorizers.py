"""An API's authorizers, as API Gateway reads them from a template, and the check that every route
names one that exists.

Two spellings, after the SAM transform:

- OpenAPI security schemes (`securityDefinitions` in Swagger 2, `components.securitySchemes` in
  OpenAPI 3) with `x-amazon-apigateway-authorizer`: what SAM writes for `Auth.Authorizers` of
  `AWS::Serverless::Api` (`token`, `request`, `cognito_user_pools`) and `AWS::Serverless::HttpApi`
  (`jwt`, `request`). A `token` scheme's identity source is its header (`name`), as SAM leaves it;
  a route's `security` names the scheme, with its scopes.
- `AWS::ApiGateway::Authorizer` and `AWS::ApiGatewayV2::Authorizer` resources, which methods and
  routes name in `AuthorizerId` (`!Ref`, or `!GetAtt X.AuthorizerId`).

Results are cached 300 seconds by default on REST APIs (AWS's documented default); HTTP APIs
document none, and fogbank caches only when `authorizerResultTtlInSeconds` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fogbank.model._api import Api, ApiKind, Route
from fogbank.model._integrations import Where, lambda_target
from fogbank.model._management import DEFAULT_AUTHORIZER_TTL_S, Authorizer, AuthorizerType
from fogbank.model._openapi import LocalDefinitions, body_where

REST_AUTHORIZER = "AWS::ApiGateway::Authorizer"
HTTP_AUTHORIZER = "AWS::ApiGatewayV2::Authorizer"
MAX_TTL_S = 3600
_EXTENSION = "x-amazon-apigateway-authorizer"
_ROUTE_RESOURCES = ("AWS::ApiGateway::Method", "AWS::ApiGatewayV2::Route")
# The route's AuthorizationType each kind of authorizer goes with.
_AUTHORIZATION = {
    AuthorizerType.TOKEN: "CUSTOM",
    AuthorizerType.REQUEST: "CUSTOM",
    AuthorizerType.JWT: "JWT",
    AuthorizerType.COGNITO_USER_POOLS: "COGNITO_USER_POOLS",
}
_KINDS = {
    ApiKind.REST: (AuthorizerType.TOKEN, AuthorizerType.REQUEST, AuthorizerType.COGNITO_USER_POOLS),
    ApiKind.HTTP: (AuthorizerType.REQUEST, AuthorizerType.JWT),
}


def with_authorizers(
    api: Api,
    resources: Mapping[str, Mapping[str, Any]],
    *,
    file: str,
    functions: Mapping[str, str],
    definitions: LocalDefinitions,
) -> Api:
    """`api` with its authorizers in `management.authorizers`, every route's checked.

    Raises `TemplateError` naming the file, resource and property of a bad authorizer, or of a
    route that names none or one that does not exist.
    """
    logical_id = api.logical_id or ""
    resource = resources.get(logical_id, {})
    found: dict[str, Authorizer] = {}
    body = resource.get("Properties", {}).get("Body")
    if isinstance(body, dict):
        where = body_where(resource, logical_id, file, definitions.files)
        found.update(_from_definition(body, api.kind, where, functions))
    for child_id, child in resources.items():
        kind = REST_AUTHORIZER if api.kind is ApiKind.REST else HTTP_AUTHORIZER
        props = child.get("Properties", {})
        if child.get("Type") == kind and _owner(props) == logical_id:
            spelling = _REST_RESOURCE if api.kind is ApiKind.REST else _HTTP_RESOURCE
            at = Where(file, child_id)
            found[child_id] = _authorizer(child_id, api.kind, props, at, functions, spelling)
    for route in api.routes:
        _check_route(api, route, found, resources, file, definitions)
        base = (route.authorizer or "").removesuffix(".AuthorizerId")
        if route.authorizer and base in found:
            # `!GetAtt X.AuthorizerId` names X too.
            found[route.authorizer] = found[base]
    if not found:
        return api
    return replace(api, management=replace(api.management, authorizers=found))


@dataclass(frozen=True, slots=True)
class _Spelling:
    """The property names of one way of writing an authorizer."""

    type: str
    uri: str
    sources: str
    expression: str
    ttl: str
    version: str
    simple: str
    jwt: str
    issuer: str
    audience: str
    pools: str


_OPENAPI = _Spelling(
    "type",
    "authorizerUri",
    "identitySource",
    "identityValidationExpression",
    "authorizerResultTtlInSeconds",
    "authorizerPayloadFormatVersion",
    "enableSimpleResponses",
    "jwtConfiguration",
    "issuer",
    "audience",
    "providerARNs",
)
_REST_RESOURCE = _Spelling(
    "Type",
    "AuthorizerUri",
    "IdentitySource",
    "IdentityValidationExpression",
    "AuthorizerResultTtlInSeconds",
    "AuthorizerPayloadFormatVersion",
    "EnableSimpleResponses",
    "JwtConfiguration",
    "Issuer",
    "Audience",
    "ProviderARNs",
)
_HTTP_RESOURCE = replace(_REST_RESOURCE, type="AuthorizerType")


def _from_definition(
    body: Mapping[str, Any], kind: ApiKind, where: Where, functions: Mapping[str, str]
) -> dict[str, Authorizer]:
    if "securityDefinitions" in body:
        schemes, at = body["securityDefinitions"], where.at("securityDefinitions")
    else:
        components = body.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
        at = where.at("components", "securitySchemes")
    found: dict[str, Authorizer] = {}
    for name, scheme in at.mapping(schemes).items():
        extension = scheme.get(_EXTENSION) if isinstance(scheme, dict) else None
        if extension is None:
            continue  # API keys, IAM (`x-amazon-apigateway-authtype: awsSigv4`), plain OpenAPI
        spec_at = at.at(str(name), _EXTENSION)
        # SAM leaves a TOKEN or Cognito scheme's identity source to the scheme's header.
        header = scheme.get("name") if scheme.get("in", "header") == "header" else None
        found[str(name)] = _authorizer(
            str(name), kind, spec_at.mapping(extension), spec_at, functions, _OPENAPI, header
        )
    return found


def _authorizer(
    name: str,
    kind: ApiKind,
    spec: Mapping[str, Any],
    where: Where,
    functions: Mapping[str, str],
    spelling: _Spelling,
    header: Any = None,
) -> Authorizer:
    """One authorizer, from either spelling."""
    names = spelling
    type_at = where.at(names.type)
    type_ = type_at.text(spec.get(names.type), default="").upper()
    allowed = _KINDS[kind]
    authorizer_type = AuthorizerType.__members__.get(type_)
    if authorizer_type not in allowed:
        kinds = ", ".join(t.value for t in allowed)
        raise type_at.error(f"authorizer type {type_ or '(none)'} is not one of {kinds}")
    identity = _sources(spec.get(names.sources), where.at(names.sources), kind)
    if not identity and isinstance(header, str) and header:
        identity = (f"method.request.header.{header}",)
    common: dict[str, Any] = {"identity_sources": identity}
    if authorizer_type in (AuthorizerType.TOKEN, AuthorizerType.REQUEST):
        uri_at, ttl_at = where.at(names.uri), where.at(names.ttl)
        if spec.get(names.uri) is None:
            raise uri_at.error("a Lambda authorizer needs the function's URI")
        function, qualifier = lambda_target(uri_at.text(spec[names.uri]), uri_at, functions)
        ttl = spec.get(names.ttl)
        default_ttl = DEFAULT_AUTHORIZER_TTL_S if kind is ApiKind.REST else 0
        common.update(
            function_name=f"{function}:{qualifier}" if qualifier else function,
            ttl_s=default_ttl if ttl is None else ttl_at.number(ttl, low=0, high=MAX_TTL_S),
        )
    if authorizer_type is AuthorizerType.TOKEN:
        if len(identity) != 1 or ".header." not in identity[0]:
            raise where.at(names.sources).error(
                "a TOKEN authorizer reads one header (method.request.header.X)"
            )
        if spec.get(names.expression) is not None:
            expression_at = where.at(names.expression)
            common["validation_expression"] = expression_at.text(spec[names.expression])
    elif authorizer_type is AuthorizerType.REQUEST and kind is ApiKind.HTTP:
        version_at, simple_at = where.at(names.version), where.at(names.simple)
        payload = version_at.text(spec.get(names.version), default="2.0")
        if payload not in ("1.0", "2.0"):
            raise version_at.error(f"payload format version must be 1.0 or 2.0, got {payload}")
        simple = simple_at.flag(spec.get(names.simple))
        if simple and payload != "2.0":
            raise simple_at.error("simple responses need payload format version 2.0")
        common.update(payload_format_version=payload, simple_responses=simple)
    elif authorizer_type is AuthorizerType.JWT:
        jwt_at = where.at(names.jwt)
        config = jwt_at.mapping(spec.get(names.jwt))
        issuer = jwt_at.at(names.issuer).text(config.get(names.issuer), default="")
        if not issuer:
            raise jwt_at.at(names.issuer).error("a JWT authorizer needs an issuer")
        audience = jwt_at.at(names.audience).strings(config.get(names.audience))
        common.update(issuer=issuer, audience=audience)
        common["identity_sources"] = identity or ("$request.header.Authorization",)
    elif authorizer_type is AuthorizerType.COGNITO_USER_POOLS:
        pools_at = where.at(names.pools)
        arns = pools_at.strings(spec.get(names.pools))
        if not arns:
            raise pools_at.error("a Cognito authorizer needs user pool ARNs")
        common.update(provider_arns=arns)
        common["identity_sources"] = identity or ("method.request.header.Authorization",)
    return Authorizer(name=name, type=authorizer_type, **common)


def _sources(value: Any, where: Where, kind: ApiKind) -> tuple[str, ...]:
    """REST writes identity sources comma-separated; HTTP APIs as a list (or one string)."""
    if value is None:
        return ()
    items = where.strings(value) if isinstance(value, list) else where.text(value).split(",")
    sources = tuple(item.strip() for item in items if item.strip())
    prefix = ("method.request.", "stageVariables.", "context.")
    if kind is ApiKind.HTTP:
        prefix = ("$request.", "$stageVariables.", "$context.")
    for source in sources:
        if not source.startswith(prefix):
            raise where.error(f"identity source {source} must start with {' or '.join(prefix)}")
    return sources


def _check_route(
    api: Api,
    route: Route,
    found: Mapping[str, Authorizer],
    resources: Mapping[str, Mapping[str, Any]],
    file: str,
    definitions: LocalDefinitions,
) -> None:
    auth_type = route.authorization_type
    if auth_type in ("NONE", "AWS_IAM"):
        return
    where = _route_where(api, route, resources, file, definitions)
    key = f"{route.method} {route.path}"
    if route.authorizer is None:
        raise where.error(f"route {key} has AuthorizationType {auth_type} but no authorizer")
    authorizer = found.get(route.authorizer.removesuffix(".AuthorizerId"))
    if authorizer is None:
        raise where.error(
            f"route {key} names authorizer {route.authorizer}, which {api.logical_id} does not have"
        )
    if _AUTHORIZATION[authorizer.type] != auth_type:
        raise where.error(
            f"route {key} has AuthorizationType {auth_type}, but {authorizer.name} is a"
            f" {authorizer.type.value} authorizer ({_AUTHORIZATION[authorizer.type]})"
        )


def _route_where(
    api: Api,
    route: Route,
    resources: Mapping[str, Mapping[str, Any]],
    file: str,
    definitions: LocalDefinitions,
) -> Where:
    """Where a route's access settings are written: its Method / Route resource, else the body."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if (
            resource.get("Type") in _ROUTE_RESOURCES
            and _owner(props) == api.logical_id
            and props.get("AuthorizerId") == route.authorizer
            and _same_route(props, route)
        ):
            prop = "AuthorizerId" if route.authorizer else "AuthorizationType"
            return Where(file, logical_id, prop)
    owner = resources.get(api.logical_id or "", {})
    body = body_where(owner, api.logical_id or "", file, definitions.files)
    method = "x-amazon-apigateway-any-method" if route.method == "ANY" else route.method.lower()
    return body.at("paths", route.path, method, "security")


def _same_route(props: Mapping[str, Any], route: Route) -> bool:
    key = props.get("RouteKey")
    if key is not None:
        return str(key) == route.route_key or (key == "$default" and route.path == "$default")
    return str(props.get("HttpMethod", "")).upper() == route.method


def _owner(props: Mapping[str, Any]) -> str | None:
    owner = props.get("RestApiId", props.get("ApiId"))
    if owner is None:
        return None
    return str(owner).removesuffix(".RestApiId").removesuffix(".ApiId")
