"""Which API, stage and route a request is for, or which Function URL.

Precedence on the node's own host (`127.0.0.1:3000`), documented in docs/gateway.md:

1. `/{stage}/...` where `{stage}` is a stage of an API and the rest matches one of its routes
   (APIs in template order);
2. the routes of every HTTP API's `$default` stage at the root (its `$default` catch-all route
   excepted), as AWS serves them at the root of the API's own domain;
3. the routes of every REST API at the root, without the stage, as `sam local start-api` serves
   them (the API's first stage supplies stage name and variables);
4. an HTTP API's `$default` catch-all route.

On an API's own host (`{apiId}.execute-api.localhost:3000`) only that API is considered, exactly as
on AWS; `{urlId}.lambda-url.{region}.localhost:3000` reaches a Function URL.

A stage serves the routes of the deployment its settings name (`StageSettings.deployment_id`), so
two stages of one API can serve different snapshots; a router is built once per deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fogbank.gateway._router import Router
from fogbank.gateway._types import HttpRequest, RouteMatch, UrlMatch
from fogbank.model import DEFAULT_STAGE, Api, ApiKind, App, FunctionUrl, Route, Stage

EXECUTE_API = "execute-api"
LAMBDA_URL = "lambda-url"


@dataclass(slots=True)
class _Compiled:
    api: Api
    router: Router
    """The API's routes as last imported or loaded (stages without a deployment serve them)."""
    root_stage: Stage | None
    """The stage served at the root of the host: `$default` (HTTP), else the first stage."""
    deployments: dict[str, Router] = field(default_factory=dict)
    """A router per deployment (immutable snapshot) that a stage or canary serves."""
    stages: dict[str, Router] = field(default_factory=dict)
    """Stage name -> the router of its deployment; stages not listed serve `router`."""

    def deployment(self, deployment_id: str) -> Router | None:
        router = self.deployments.get(deployment_id)
        if router is None and deployment_id in self.api.deployments:
            routes = self.api.deployments[deployment_id].routes
            router = self.deployments[deployment_id] = Router(routes)
        return router

    def of(self, stage: Stage) -> Router:
        return self.stages.get(stage.name, self.router)


class Selector:
    """Routing tables for one app snapshot; build a new one when the app changes."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._apis = [_compile(api) for api in app.apis.values()]
        self._by_id = {c.api.api_id: c for c in self._apis}
        self._urls = {url.url_id: url for url in app.function_urls.values()}
        kinds = {api.kind for api in app.apis.values()}
        self.unmatched_kind: ApiKind | None = (
            ApiKind.REST if ApiKind.REST in kinds else (ApiKind.HTTP if kinds else None)
        )
        """Which API product's "no route" answer a request that matched nothing gets."""

    def select(self, request: HttpRequest) -> RouteMatch | UrlMatch | ApiKind | None:
        """The match, or the kind of API whose "no route" error applies (None: no API at all)."""
        labels = request.host.split(".")
        if len(labels) >= 3 and labels[-1] == "localhost":
            if labels[1] == EXECUTE_API:
                compiled = self._by_id.get(labels[0])
                if compiled is None:
                    return self.unmatched_kind
                return self._on_api_host(compiled, request) or compiled.api.kind
            if labels[1] == LAMBDA_URL:
                url = self._urls.get(labels[0])
                if url is None:
                    return self.unmatched_kind
                return UrlMatch(url=url, domain_name=request.host)
        return self._on_node_host(request) or self.unmatched_kind

    def _on_api_host(self, compiled: _Compiled, request: HttpRequest) -> RouteMatch | None:
        found = _staged(compiled, request)
        if found is not None:
            return found
        if compiled.api.kind is ApiKind.HTTP and compiled.root_stage is not None:
            return _at_root(compiled, compiled.root_stage, request, with_default=True)
        return None

    def _on_node_host(self, request: HttpRequest) -> RouteMatch | None:
        for compiled in self._apis:
            found = _staged(compiled, request)
            if found is not None:
                return found
        for kind in (ApiKind.HTTP, ApiKind.REST):
            for compiled in self._apis:
                if compiled.api.kind is kind and compiled.root_stage is not None:
                    found = _at_root(compiled, compiled.root_stage, request, with_default=False)
                    if found is not None:
                        return found
        for compiled in self._apis:
            root = compiled.root_stage
            if root is not None and (default := compiled.of(root).default) is not None:
                return _match(compiled, root, default, {}, request)
        return None

    def url(self, function_name: str) -> FunctionUrl | None:
        return self.app.function_urls.get(function_name)

    def rematch(
        self, request: HttpRequest, match: RouteMatch, deployment_id: str, stage: Stage
    ) -> RouteMatch | None:
        """The same request against another deployment of its API (a canary), as `stage`."""
        compiled = self._by_id.get(match.api.api_id)
        router = compiled.deployment(deployment_id) if compiled is not None else None
        hit = router.match(request.method, match.path) if router is not None else None
        if compiled is None or hit is None:
            return None
        found = _match(compiled, stage, hit[0], hit[1], request, path=match.path)
        found.stage_in_path = match.stage_in_path
        return found


def _compile(api: Api) -> _Compiled:
    root: Stage | None
    if api.kind is ApiKind.HTTP:
        root = api.stages.get(DEFAULT_STAGE)
    else:
        root = next(iter(api.stages.values()), None)
    compiled = _Compiled(api=api, router=Router(api.routes), root_stage=root)
    for name in api.stages:
        deployed = api.deployment_of(name)
        if deployed is not None:
            router = compiled.deployment(deployed.deployment_id)
            assert router is not None
            compiled.stages[name] = router
    return compiled


def _staged(compiled: _Compiled, request: HttpRequest) -> RouteMatch | None:
    """`/{stage}/rest...` for a named stage of this API."""
    raw = request.raw_path
    end = raw.find("/", 1)
    first = raw[1:] if end < 0 else raw[1:end]
    stage = compiled.api.stages.get(first) if first and first != DEFAULT_STAGE else None
    if stage is None:
        return None
    rest = "/" if end < 0 else raw[end:]
    hit = compiled.of(stage).match(request.method, rest)
    canary_only = False
    if hit is None:
        # A route only the stage's canary deployment has is still the canary's to serve.
        settings = compiled.api.management.stage_settings.get(stage.name)
        canary = settings.canary if settings is not None else None
        router = compiled.deployment(canary.deployment_id) if canary is not None else None
        hit = router.match(request.method, rest) if router is not None else None
        if hit is None:
            return None
        canary_only = True
    route, params = hit
    match = _match(compiled, stage, route, params, request, path=rest)
    match.stage_in_path = True
    match.canary_only = canary_only
    return match


def _at_root(
    compiled: _Compiled, stage: Stage, request: HttpRequest, *, with_default: bool
) -> RouteMatch | None:
    router = compiled.of(stage)
    hit = router.match(request.method, request.raw_path)
    if hit is None or (hit[0] is router.default and not with_default):
        return None
    return _match(compiled, stage, hit[0], hit[1], request)


def _match(
    compiled: _Compiled,
    stage: Stage,
    route: Route,
    params: dict[str, str],
    request: HttpRequest,
    *,
    path: str | None = None,
) -> RouteMatch:
    return RouteMatch(
        api=compiled.api,
        stage=stage,
        route=route,
        path_params=params,
        path=request.raw_path if path is None else path,
        stage_in_path=False,
        domain_name=request.host or "localhost",
    )
