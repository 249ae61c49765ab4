"""`apigatewayv2` operations on HTTP APIs: imports, stages, deployments and auto-deploy.

`ImportApi` (`PUT /v2/apis`) and `ReimportApi` (`PUT /v2/apis/{id}`) take the OpenAPI document as
a string in the JSON body's `body`. A stage created with `autoDeploy` gets a deployment at once
and a new one each time the API is reimported, as AWS deploys every change to such a stage. A
stage created with neither `deploymentId` nor `autoDeploy` is given a deployment of the API as
it is (AWS would serve nothing there until a deployment), so it answers from its creation on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fogbank.admin._app import AdminRequest, Operation, Reply
from fogbank.admin._control import AdminControl
from fogbank.admin._errors import BadRequest, Conflict
from fogbank.admin._imports import imported, parse_document, read, warnings_of
from fogbank.admin._records import (
    API,
    DEPLOYMENT,
    STAGE,
    Change,
    DeploymentRecord,
    StageRecord,
    new_id,
    put,
    stage_key,
)
from fogbank.admin._views import http_api, http_deployment, http_stage
from fogbank.model import Api, ApiKind, Deployment, Route, StageSettings, Throttle

HTTP = ApiKind.HTTP.value


class HttpApis:
    """The HTTP API operations; `endpoint` gives an API id's base URL on the data plane."""

    def __init__(self, control: AdminControl, endpoint: Callable[[str], str]) -> None:
        self.control = control
        self.endpoint = endpoint

    def operations(self) -> list[Operation]:
        api, stages = "/v2/apis/{api_id}", "/v2/apis/{api_id}/stages"
        return [
            Operation("PUT", "/v2/apis", self.import_api, v2=True),
            Operation("GET", "/v2/apis", self.get_apis, v2=True),
            Operation("GET", api, self.get_api, v2=True),
            Operation("PUT", api, self.reimport_api, v2=True),
            Operation("POST", stages, self.create_stage, v2=True),
            Operation("GET", stages, self.get_stages, v2=True),
            Operation("GET", f"{stages}/{{stage_name}}", self.get_stage, v2=True),
            Operation("POST", f"{api}/deployments", self.create_deployment, v2=True),
            Operation("GET", f"{api}/deployments", self.get_deployments, v2=True),
        ]

    def _view(self, api: Api) -> dict[str, Any]:
        rec = self.control.records.apis.get(api.api_id)
        created = rec.created_s if rec is not None else self.control.started_s
        warnings = rec.warnings if rec is not None else ()
        return http_api(api, created, self.endpoint(api.api_id), warnings)

    def _document(self, request: AdminRequest) -> dict[str, Any]:
        body = request.json().get("body")
        if not isinstance(body, str):
            raise BadRequest("body (the OpenAPI document, as a string) is required")
        return parse_document(body)

    async def import_api(self, request: AdminRequest) -> Reply:
        document = self._document(request)
        async with self.control.lock:
            fail = request.query.get("failOnWarnings") == "true"
            rec = imported(document, ApiKind.HTTP, self.control, fail_on_warnings=fail)
            app = await self.control.commit([put(API, rec.api_id, rec)])
        return Reply(201, self._view(app.apis[rec.api_id]))

    async def reimport_api(self, request: AdminRequest) -> Reply:
        document = self._document(request)
        async with self.control.lock:
            api = self.control.api(request.params["api_id"], HTTP)
            rec = self.control.records.apis.get(api.api_id)
            if rec is None:
                raise Conflict("This API comes from the template; change the template instead")
            definition = read(document, ApiKind.HTTP, self.control.current())
            rec = replace(rec, body=document, warnings=warnings_of(definition))
            changes: list[Change] = [put(API, rec.api_id, rec)]
            auto = [s for s in self._stages(api) if s.auto_deploy]
            if auto:
                dep = self._deployment(api.api_id, definition.routes, auto_deployed=True)
                changes += [put(DEPLOYMENT, _dep_key(dep), dep)]
                changes += [self._point(s, dep.deployment.deployment_id) for s in auto]
            app = await self.control.commit(changes)
        return Reply(201, self._view(app.apis[rec.api_id]))

    async def get_apis(self, request: AdminRequest) -> Reply:
        apis = [a for a in self.control.current().apis.values() if a.kind is ApiKind.HTTP]
        return Reply(200, {"items": [self._view(api) for api in apis]})

    async def get_api(self, request: AdminRequest) -> Reply:
        return Reply(200, self._view(self.control.api(request.params["api_id"], HTTP)))

    # -- stages and deployments ---------------------------------------------------------------

    def _stages(self, api: Api) -> list[StageRecord]:
        return [self.control.stage(api, name) for name in api.stages]

    def _deployment(
        self, api_id: str, routes: tuple[Route, ...], *, auto_deployed: bool, description: str = ""
    ) -> DeploymentRecord:
        deployment = Deployment(new_id(6), routes, description, self.control.clock())
        return DeploymentRecord(api_id, deployment, auto_deployed)

    def _point(self, stage: StageRecord, dep_id: str) -> Change:
        settings = replace(stage.settings, deployment_id=dep_id)
        updated = replace(stage, settings=settings, updated_s=self.control.clock())
        return put(STAGE, stage_key(stage.api_id, stage.name), updated)

    async def create_stage(self, request: AdminRequest) -> Reply:
        data = request.json()
        name = data.get("stageName")
        if not isinstance(name, str) or not name:
            raise BadRequest("stageName is required")
        async with self.control.lock:
            api = self.control.api(request.params["api_id"], HTTP)
            if name in api.stages:
                raise Conflict(f"Stage {name} already exists")
            changes: list[Change] = []
            dep_id = data.get("deploymentId")
            if isinstance(dep_id, str) and dep_id:
                self.control.check_deployment(api, dep_id)
            else:
                auto = bool(data.get("autoDeploy"))
                dep = self._deployment(api.api_id, api.routes, auto_deployed=auto)
                changes.append(put(DEPLOYMENT, _dep_key(dep), dep))
                dep_id = dep.deployment.deployment_id
            defaults = data.get("defaultRouteSettings") or {}
            throttle = None
            if defaults.get("throttlingRateLimit") is not None:
                throttle = Throttle(
                    float(defaults["throttlingRateLimit"]),
                    int(defaults.get("throttlingBurstLimit") or 0),
                )
            rec = StageRecord(
                api.api_id,
                name,
                StageSettings(deployment_id=dep_id, throttle=throttle),
                variables={str(k): str(v) for k, v in (data.get("stageVariables") or {}).items()},
                description=str(data.get("description") or ""),
                auto_deploy=bool(data.get("autoDeploy")),
                created_s=self.control.clock(),
            )
            changes.append(put(STAGE, stage_key(api.api_id, name), rec))
            await self.control.commit(changes)
        return Reply(201, http_stage(rec))

    async def get_stages(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["api_id"], HTTP)
        return Reply(200, {"items": [http_stage(s) for s in self._stages(api)]})

    async def get_stage(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["api_id"], HTTP)
        return Reply(200, http_stage(self.control.stage(api, request.params["stage_name"])))

    async def create_deployment(self, request: AdminRequest) -> Reply:
        data = request.json()
        async with self.control.lock:
            api = self.control.api(request.params["api_id"], HTTP)
            description = str(data.get("description") or "")
            dep = self._deployment(
                api.api_id, api.routes, auto_deployed=False, description=description
            )
            changes: list[Change] = [put(DEPLOYMENT, _dep_key(dep), dep)]
            name = data.get("stageName")
            if name:
                changes.append(
                    self._point(self.control.stage(api, str(name)), dep.deployment.deployment_id)
                )
            await self.control.commit(changes)
        return Reply(201, http_deployment(dep))

    async def get_deployments(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["api_id"], HTTP)
        items = [http_deployment(d) for d in self.control.deployments(api.api_id)]
        return Reply(200, {"items": items})


def _dep_key(rec: DeploymentRecord) -> str:
    return f"{rec.api_id}/{rec.deployment.deployment_id}"
