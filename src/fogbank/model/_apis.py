"""The app's APIs and Function URLs, built from a template's resolved CloudFormation resources.

This runs after SAM translation, so SAM's `Api` / `HttpApi` events, `AWS::Serverless::Api` /
`HttpApi` and `FunctionUrlConfig` arrive as the resources AWS itself would create: REST APIs
(`AWS::ApiGateway::RestApi` with an OpenAPI `Body`, or `Resource` / `Method` resources), HTTP APIs
(`AWS::ApiGatewayV2::Api` with a `Body`, `Route` / `Integration` resources or a quick-create
`Target`), their stages, and `AWS::Lambda::Url`.

Every stage AWS would create is served. A REST `Deployment` with a `StageName` creates that stage,
so SAM's REST APIs have two: the one SAM names (`Prod` for the implicit API, else `StageName`)
and `Stage`, from the generated deployment (SAM leaves it out when `OpenApiVersion` is set).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from typing import Any

from fogbank.model._api import (
    DEFAULT_ROUTE,
    DEFAULT_STAGE,
    HTTP_TIMEOUT_MS,
    Api,
    ApiKind,
    FunctionUrl,
    Integration,
    IntegrationType,
    Route,
    Stage,
    api_id_for,
)
from fogbank.model._authorizers import HTTP_AUTHORIZER, REST_AUTHORIZER, with_authorizers
from fogbank.model._function_urls import build_function_urls
from fogbank.model._gateway_responses import GATEWAY_RESPONSE, read_gateway_responses
from fogbank.model._integrations import (
    METHOD_FIELDS,
    METHODS,
    V2_FIELDS,
    Where,
    lambda_target,
    parse_route_key,
    path_problem,
    read_cors,
    read_integration,
    route_access,
)
from fogbank.model._management import ApiManagement
from fogbank.model._openapi import (
    HTTP_API,
    REST_API,
    Definition,
    LocalDefinitions,
    body_where,
    read_definition,
)
from fogbank.model._stage_caching import read_stage_caching
from fogbank.model._usage_plans import USAGE_TYPES
from fogbank.model._validation import MODEL, REQUEST_VALIDATOR, read_method_requests

RESOURCE = "AWS::ApiGateway::Resource"
METHOD = "AWS::ApiGateway::Method"
DEPLOYMENT = "AWS::ApiGateway::Deployment"
STAGE = "AWS::ApiGateway::Stage"
V2_ROUTE = "AWS::ApiGatewayV2::Route"
V2_INTEGRATION = "AWS::ApiGatewayV2::Integration"
V2_STAGE = "AWS::ApiGatewayV2::Stage"
V2_DEPLOYMENT = "AWS::ApiGatewayV2::Deployment"
V2_VPC_LINK = "AWS::ApiGatewayV2::VpcLink"

# What this module reads; any other API Gateway resource gets a "not served" warning.
_SERVED = frozenset(
    (REST_API, RESOURCE, METHOD, DEPLOYMENT, STAGE, MODEL, REQUEST_VALIDATOR, GATEWAY_RESPONSE)
) | {REST_AUTHORIZER}
_SERVED_V2 = frozenset(
    (HTTP_API, V2_ROUTE, V2_INTEGRATION, V2_STAGE, V2_DEPLOYMENT, HTTP_AUTHORIZER)
)
_API_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::")

# (where, route key, the route or why it is not served) for routes from resources.
_Outcome = tuple[Where, str, Route | str]
# (method, path, where, properties) of one `AWS::ApiGateway::Method`.
_MethodSpec = tuple[str, str, Where, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Served:
    """What the API loader built, and one warning per thing it accepted but does not serve."""

    apis: tuple[Api, ...] = ()
    function_urls: tuple[FunctionUrl, ...] = ()
    warnings: tuple[str, ...] = ()


def build_apis(
    resources: Mapping[str, Mapping[str, Any]],
    *,
    functions: Mapping[str, str],
    runnable: Set[str],
    file: str,
    definitions: LocalDefinitions,
    cloud_map: Set[str] = frozenset(),
) -> Served:
    """Build every REST and HTTP API and Function URL in `resources` (resolved, post-SAM).

    `functions` maps each name a template function answers to (its name, its logical id) to its
    name; `runnable` holds the names of the functions the app runs (image functions are known but
    not runnable); `cloud_map` the ids of the template's Cloud Map services, which private
    integrations may name. Raises `TemplateError` naming the file, resource and property.
    """
    return _Builder(resources, functions, runnable, file, definitions, cloud_map).build()


@dataclass
class _Builder:
    resources: Mapping[str, Mapping[str, Any]]
    functions: Mapping[str, str]
    runnable: Set[str]
    file: str
    definitions: LocalDefinitions
    cloud_map: Set[str]
    warnings: list[str] = field(default_factory=list)
    websockets: set[str] = field(default_factory=set)
    apis: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for logical_id, resource in self.resources.items():
            if resource["Type"] in (REST_API, HTTP_API):
                protocol = str(resource["Properties"].get("ProtocolType", "HTTP")).upper()
                websocket = protocol == "WEBSOCKET"
                (self.websockets if websocket else self.apis).add(logical_id)

    def build(self) -> Served:
        apis = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] == REST_API:
                apis.append(self._rest_api(logical_id, resource))
            elif resource["Type"] == HTTP_API and logical_id in self.apis:
                apis.append(self._http_api(logical_id, resource))
        apis = [
            with_authorizers(
                api,
                self.resources,
                file=self.file,
                functions=self.functions,
                definitions=self.definitions,
            )
            for api in apis
        ]
        urls, warnings = build_function_urls(
            self.resources, functions=self.functions, runnable=self.runnable, file=self.file
        )
        self._warn_unserved()
        return Served(tuple(apis), tuple(urls), (*self.warnings, *warnings))

    def _children(self, kind: str, api: str) -> list[tuple[str, Where, dict[str, Any]]]:
        return [
            (logical_id, Where(self.file, logical_id), resource["Properties"])
            for logical_id, resource in self.resources.items()
            if resource["Type"] == kind and _owner(resource["Properties"]) == api
        ]

    def _warn_unserved(self) -> None:
        for logical_id, resource in self.resources.items():
            kind, props = resource["Type"], resource["Properties"]
            if not kind.startswith(_API_PREFIXES) or kind in USAGE_TYPES:
                continue  # usage plans and keys: read (and warned about) by `_usage_plans`
            if kind == V2_VPC_LINK:
                continue  # what a private integration names through it is what counts
            owner = _owner(props)
            if logical_id in self.websockets:
                self.warnings.append(
                    f"{logical_id} is a WebSocket API, which fogbank does not serve"
                )
            elif owner in self.websockets:
                continue  # part of a WebSocket API: warned about once, above
            elif kind not in _SERVED | _SERVED_V2:
                self.warnings.append(f"{logical_id} ({kind}) is not served by fogbank")
            elif kind not in (REST_API, HTTP_API) and owner not in self.apis:
                self.warnings.append(
                    f"{logical_id} ({kind}) is for API {owner}, which is not in this template"
                )

    def _definition(self, api: str, resource: Mapping[str, Any], kind: ApiKind) -> Definition:
        body = resource["Properties"].get("Body")
        if body is None:
            return Definition()
        where = body_where(resource, api, self.file, self.definitions.files)
        return read_definition(body, kind, where, self.functions, cloud_map=self.cloud_map)

    def _api(
        self,
        api: str,
        props: Mapping[str, Any],
        kind: ApiKind,
        routes: tuple[Route, ...],
        stages: dict[str, Stage],
        definition: Definition,
        **settings: Any,
    ) -> Api:
        where = Where(self.file, api)
        if not stages:
            self.warnings.append(f"{api} has no stage, so no URL serves it")
        disable = props.get("DisableExecuteApiEndpoint")
        return Api(
            api_id=api_id_for(api),
            name=where.at("Name").text(props.get("Name"), default=api),
            kind=kind,
            routes=routes,
            stages=stages,
            logical_id=api,
            description=where.at("Description").text(
                props.get("Description"), default=definition.description
            ),
            disable_execute_api_endpoint=definition.disable_execute_api_endpoint
            if disable is None
            else where.at("DisableExecuteApiEndpoint").flag(disable),
            **settings,
        )

    def _collect(self, api: str, definition: Definition, own: list[_Outcome]) -> tuple[Route, ...]:
        """The definition's routes plus those of resources; one warning per reason not served."""
        routes = {(route.method, route.path): route for route in definition.routes}
        unserved: dict[str, list[str]] = {}
        for key, reason in definition.unserved:
            unserved.setdefault(reason, []).append(key)
        for where, key, outcome in own:
            if isinstance(outcome, str):
                unserved.setdefault(outcome, []).append(key)
            elif (outcome.method, outcome.path) in routes:
                raise where.error(f"route {key} is defined twice")
            else:
                routes[outcome.method, outcome.path] = outcome
        for reason, keys in unserved.items():
            self.warnings.append(f"{api}: not served by fogbank ({reason}): {', '.join(keys)}")
        return tuple(routes.values())

    def _outcome(
        self, where: Where, key: str, route: tuple[str, str], found: Integration | str
    ) -> _Outcome:
        """A Method's or Route's outcome: the route with its access settings, or the reason."""
        if isinstance(found, str):
            return where, key, found
        props = self.resources[str(where.resource)]["Properties"]
        return where, key, Route(*route, found, **route_access(where, props))

    # REST APIs

    def _rest_api(self, api: str, resource: Mapping[str, Any]) -> Api:
        props, where = resource["Properties"], Where(self.file, api)
        definition = self._definition(api, resource, ApiKind.REST)
        # The property escapes `/` as `~1` (`image~1png`); the OpenAPI extension does not.
        escaped = where.at("BinaryMediaTypes").strings(props.get("BinaryMediaTypes"))
        binary = [*definition.binary_media_types, *(t.replace("~1", "/") for t in escaped)]
        source_at = where.at("ApiKeySourceType")
        source = source_at.text(props.get("ApiKeySourceType"), default="").upper()
        specs = self._method_specs(api)
        return self._api(
            api,
            props,
            ApiKind.REST,
            self._collect(api, definition, self._methods(specs)),
            self._rest_stages(api),
            definition,
            binary_media_types=tuple(dict.fromkeys(binary)),
            api_key_source=source or definition.api_key_source or "HEADER",
            management=self._management(api, resource, specs),
        )

    def _management(
        self, api: str, resource: Mapping[str, Any], specs: list[_MethodSpec]
    ) -> ApiManagement:
        """Request validation, cache keys, stage cache settings and gateway responses."""
        body = resource["Properties"].get("Body")
        at = body_where(resource, api, self.file, self.definitions.files)
        requests = read_method_requests(
            body,
            at,
            validators=self._children(REQUEST_VALIDATOR, api),
            models=self._children(MODEL, api),
            methods=[(f"{verb} {path}", where, props) for verb, path, where, props in specs],
        )
        return replace(
            requests,
            gateway_responses=read_gateway_responses(
                body, at, self._children(GATEWAY_RESPONSE, api)
            ),
            stage_settings=read_stage_caching(
                self._children(STAGE, api), self._children(DEPLOYMENT, api)
            ),
        )

    def _resource_paths(self, api: str) -> dict[str, str]:
        """The path of each `AWS::ApiGateway::Resource` of `api`, walking up its parents."""
        nodes = {
            logical_id: (where, props) for logical_id, where, props in self._children(RESOURCE, api)
        }
        root = f"{api}.RootResourceId"
        paths: dict[str, str] = {}

        def path_of(logical_id: str, below: tuple[str, ...]) -> str:
            if logical_id in paths:
                return paths[logical_id]
            where, props = nodes[logical_id]
            part = where.at("PathPart").text(props.get("PathPart"), default="")
            if not part or "/" in part:
                raise where.at("PathPart").error(f"expected one path segment, got {part!r}")
            parent_at = where.at("ParentId")
            parent = parent_at.text(props.get("ParentId"), default="")
            if parent in below:
                raise parent_at.error(f"resource {logical_id} is its own ancestor")
            if parent != root and parent not in nodes:
                raise parent_at.error(f"{parent} is not a resource of {api}")
            path = ("" if parent == root else path_of(parent, (*below, logical_id))) + f"/{part}"
            if problem := path_problem(path, ApiKind.REST):
                raise where.at("PathPart").error(problem)
            paths[logical_id] = path
            return path

        for logical_id in nodes:
            path_of(logical_id, ())
        return paths

    def _method_specs(self, api: str) -> list[_MethodSpec]:
        paths, root = self._resource_paths(api), f"{api}.RootResourceId"
        specs: list[_MethodSpec] = []
        for _, where, props in self._children(METHOD, api):
            resource = where.at("ResourceId").text(props.get("ResourceId"), default="")
            path = "/" if resource == root else paths.get(resource)
            if path is None:
                raise where.at("ResourceId").error(f"{resource} is not a resource of {api}")
            verb_at = where.at("HttpMethod")
            verb = verb_at.text(props.get("HttpMethod"), default="").upper()
            if verb not in METHODS:
                raise verb_at.error(f"unknown HTTP method {verb or '(none)'}")
            specs.append((verb, path, where, props))
        return specs

    def _methods(self, specs: list[_MethodSpec]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for verb, path, where, props in specs:
            key, spec = f"{verb} {path}", props.get("Integration")
            if spec is None:
                outcomes.append((where, key, "no integration"))
                continue
            at = where.at("Integration")
            found = read_integration(
                at.mapping(spec), METHOD_FIELDS, ApiKind.REST, at, self.functions
            )
            outcomes.append(self._outcome(where, key, (verb, path), found))
        return outcomes

    def _rest_stages(self, api: str) -> dict[str, Stage]:
        stages: dict[str, Stage] = {}
        for _, where, props in self._children(STAGE, api):
            name = where.at("StageName").text(props.get("StageName"))
            stages[name] = Stage(name, where.at("Variables").string_map(props.get("Variables")))
        for _, where, props in self._children(DEPLOYMENT, api):
            if props.get("StageName") is not None:
                name = where.at("StageName").text(props["StageName"])
                described = where.at("StageDescription").mapping(props.get("StageDescription"))
                variables = where.at("StageDescription", "Variables").string_map(
                    described.get("Variables")
                )
                stages.setdefault(name, Stage(name, variables))
        return stages

    # HTTP APIs

    def _http_api(self, api: str, resource: Mapping[str, Any]) -> Api:
        props, where = resource["Properties"], Where(self.file, api)
        definition = self._definition(api, resource, ApiKind.HTTP)
        integrations = {
            logical_id: read_integration(
                spec, V2_FIELDS, ApiKind.HTTP, at, self.functions, cloud_map=self.cloud_map
            )
            for logical_id, at, spec in self._children(V2_INTEGRATION, api)
        }
        own = self._routes(api, integrations)
        stages = self._http_stages(api)
        if props.get("Target") is not None:
            own.append(self._quick_create(where, props))
            stages.setdefault(DEFAULT_STAGE, Stage(DEFAULT_STAGE))
        cors = props.get("CorsConfiguration")
        return self._api(
            api,
            props,
            ApiKind.HTTP,
            self._collect(api, definition, own),
            stages,
            definition,
            cors=definition.cors
            if cors is None
            else read_cors(cors, where.at("CorsConfiguration"), capitalized=True),
        )

    def _routes(self, api: str, integrations: Mapping[str, Integration | str]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for _, where, props in self._children(V2_ROUTE, api):
            key_at = where.at("RouteKey")
            key = key_at.text(props.get("RouteKey"), default="")
            method, path = parse_route_key(key, key_at)
            if props.get("Target") is None:
                outcomes.append((where, key, "no integration"))
                continue
            target_at = where.at("Target")
            target = target_at.text(props["Target"])
            prefix, _, integration_id = target.partition("/")
            found = integrations.get(integration_id) if prefix == "integrations" else None
            if found is None:
                raise target_at.error(
                    f"{target} names no integration of {api} (expected integrations/<id>)"
                )
            outcomes.append(self._outcome(where, key, (method, path), found))
        return outcomes

    def _quick_create(self, where: Where, props: Mapping[str, Any]) -> _Outcome:
        """The one route of a quick-create API: `Target` behind `RouteKey` (default `$default`)."""
        key_at, target_at = where.at("RouteKey"), where.at("Target")
        key = key_at.text(props.get("RouteKey"), default=DEFAULT_ROUTE)
        method, path = parse_route_key(key, key_at)
        target = target_at.text(props["Target"])
        if target.startswith(("http://", "https://")):
            integration = Integration(
                IntegrationType.HTTP_PROXY, uri=target, timeout_ms=HTTP_TIMEOUT_MS
            )
        else:
            name, qualifier = lambda_target(target, target_at, self.functions)
            integration = Integration(
                IntegrationType.AWS_PROXY,
                function_name=name,
                qualifier=qualifier,
                payload_format_version="2.0",  # what quick create configures
                timeout_ms=HTTP_TIMEOUT_MS,
            )
        return where, key, Route(method, path, integration)

    def _http_stages(self, api: str) -> dict[str, Stage]:
        deployed = bool(self._children(V2_DEPLOYMENT, api))
        stages: dict[str, Stage] = {}
        for logical_id, where, props in self._children(V2_STAGE, api):
            name = where.at("StageName").text(props.get("StageName"))
            variables = where.at("StageVariables").string_map(props.get("StageVariables"))
            stages[name] = Stage(name, variables)
            if not deployed and not where.at("AutoDeploy").flag(props.get("AutoDeploy")):
                self.warnings.append(
                    f"{logical_id}: stage {name} has AutoDeploy off and {api} no Deployment;"
                    " fogbank serves the routes as the template has them"
                )
        return stages


def _owner(props: Mapping[str, Any]) -> str | None:
    """The logical id of the API a resource belongs to (`!Ref Api` or `!GetAtt Api.RestApiId`)."""
    owner = props.get("RestApiId", props.get("ApiId"))
    if owner is None:
        return None
    return str(owner).removesuffix(".RestApiId").removesuffix(".ApiId")
