"""`apigateway` operations on REST APIs: imports, deployments and stages (canaries included).

- `ImportRestApi` (`POST /restapis?mode=import`) and `PutRestApi` (`PUT /restapis/{id}`,
  `mode=overwrite` or `merge`) record the document; the API's stages go on serving their
  deployments until `CreateDeployment` snapshots the new routes, as on AWS.
- `CreateDeployment` with a `stageName` points that stage at the new deployment (creating the
  stage if need be); with `canarySettings` it becomes the stage's canary instead.
- `UpdateStage` applies patch operations (`_patch`): variables, method settings, rollback by
  `/deploymentId`, canary settings, promotion.
- `FlushStageCache` drops the stage's cached responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fogbank.admin._app import AdminRequest, Operation, Reply
from fogbank.admin._control import AdminControl
from fogbank.admin._errors import BadRequest, Conflict, NotFound
from fogbank.admin._imports import imported, merge, parse_document, read, warnings_of
from fogbank.admin._patch import apply_patch
from fogbank.admin._records import (
    API,
    DEPLOYMENT,
    STAGE,
    Change,
    DeploymentRecord,
    StageRecord,
    drop,
    new_id,
    put,
    stage_key,
)
from fogbank.admin._views import deployment, rest_api, stage
from fogbank.model import Api, ApiKind, Canary, Deployment, StageSettings

REST = ApiKind.REST.value
FlushCache = Callable[[str, str], Awaitable[object]]
"""(api id, stage name) -> drop that stage's cached responses."""


class RestApis:
    """The REST API operations over one `AdminControl`."""

    def __init__(self, control: AdminControl, flush_cache: FlushCache | None = None) -> None:
        self.control = control
        self.flush_cache = flush_cache

    def operations(self) -> list[Operation]:
        api, stages = "/restapis/{restapi_id}", "/restapis/{restapi_id}/stages"
        return [
            Operation("POST", "/restapis", self.import_api),
            Operation("GET", "/restapis", self.get_apis),
            Operation("GET", api, self.get_api),
            Operation("PUT", api, self.put_api),
            Operation("POST", f"{api}/deployments", self.create_deployment),
            Operation("GET", f"{api}/deployments", self.get_deployments),
            Operation("GET", f"{api}/deployments/{{deployment_id}}", self.get_deployment),
            Operation("POST", stages, self.create_stage),
            Operation("GET", stages, self.get_stages),
            Operation("GET", f"{stages}/{{stage_name}}", self.get_stage),
            Operation("PATCH", f"{stages}/{{stage_name}}", self.update_stage),
            Operation("DELETE", f"{stages}/{{stage_name}}", self.delete_stage),
            Operation("DELETE", f"{stages}/{{stage_name}}/cache/data", self.flush_stage_cache),
        ]

    # -- APIs ---------------------------------------------------------------------------------

    def _view(self, api: Api) -> dict[str, Any]:
        rec = self.control.records.apis.get(api.api_id)
        if rec is None:
            return rest_api(api, self.control.started_s)
        return rest_api(api, rec.created_s, rec.version, rec.warnings)

    async def import_api(self, request: AdminRequest) -> Reply:
        if request.query.get("mode") != "import":
            raise BadRequest("fogbank creates REST APIs by import only: POST /restapis?mode=import")
        document = parse_document(request.body)
        async with self.control.lock:
            fail = request.query.get("failonwarnings") == "true"
            rec = imported(document, ApiKind.REST, self.control, fail_on_warnings=fail)
            app = await self.control.commit([put(API, rec.api_id, rec)])
        return Reply(201, self._view(app.apis[rec.api_id]))

    async def put_api(self, request: AdminRequest) -> Reply:
        mode = request.query.get("mode", "merge")
        if mode not in ("merge", "overwrite"):
            raise BadRequest(f"Invalid mode {mode}: use merge or overwrite")
        update = parse_document(request.body)
        async with self.control.lock:
            api = self.control.api(request.params["restapi_id"], REST)
            rec = self.control.records.apis.get(api.api_id)
            if rec is None:
                raise Conflict("This API comes from the template; change the template instead")
            document = update if mode == "overwrite" else merge(rec.body, update)
            definition = read(document, ApiKind.REST, self.control.current())
            rec = replace(rec, body=document, warnings=warnings_of(definition))
            app = await self.control.commit([put(API, rec.api_id, rec)])
        return Reply(200, self._view(app.apis[rec.api_id]))

    async def get_apis(self, request: AdminRequest) -> Reply:
        apis = [a for a in self.control.current().apis.values() if a.kind is ApiKind.REST]
        return Reply(200, {"item": [self._view(api) for api in apis]})

    async def get_api(self, request: AdminRequest) -> Reply:
        return Reply(200, self._view(self.control.api(request.params["restapi_id"], REST)))

    # -- deployments --------------------------------------------------------------------------

    async def create_deployment(self, request: AdminRequest) -> Reply:
        data = request.json()
        async with self.control.lock:
            api = self.control.api(request.params["restapi_id"], REST)
            if not api.routes:
                raise BadRequest("The REST API doesn't contain any methods")
            rec = DeploymentRecord(
                api.api_id,
                Deployment(
                    new_id(6), api.routes, str(data.get("description") or ""), self.control.clock()
                ),
            )
            dep_id = rec.deployment.deployment_id
            changes: list[Change] = [put(DEPLOYMENT, f"{api.api_id}/{dep_id}", rec)]
            name = data.get("stageName")
            if name:
                changes.append(self._deploy_to_stage(api, str(name), dep_id, data))
            await self.control.commit(changes)
        return Reply(201, deployment(rec))

    def _deploy_to_stage(self, api: Api, name: str, dep_id: str, data: dict[str, Any]) -> Change:
        now = self.control.clock()
        existing = name in api.stages
        if existing:
            current = self.control.stage(api, name)
        else:
            current = StageRecord(
                api.api_id,
                name,
                StageSettings(deployment_id=dep_id),
                description=str(data.get("stageDescription") or ""),
                created_s=now,
            )
        variables = {**current.variables, **_strings(data.get("variables"), "variables")}
        canary_spec = data.get("canarySettings")
        settings = current.settings
        if isinstance(canary_spec, dict):
            if not existing:
                raise BadRequest("A canary deployment needs an existing stage")
            settings = replace(settings, canary=_canary(canary_spec, dep_id))
        else:
            settings = replace(settings, deployment_id=dep_id)
        if data.get("cacheClusterEnabled") is not None:
            settings = replace(settings, cache_cluster_enabled=bool(data["cacheClusterEnabled"]))
        updated = replace(current, settings=settings, variables=variables, updated_s=now)
        return put(STAGE, stage_key(api.api_id, name), updated)

    async def get_deployments(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["restapi_id"], REST)
        items = [deployment(rec) for rec in self.control.deployments(api.api_id)]
        return Reply(200, {"item": items})

    async def get_deployment(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["restapi_id"], REST)
        return Reply(200, deployment(self.control.deployment(api, request.params["deployment_id"])))

    # -- stages -------------------------------------------------------------------------------

    async def create_stage(self, request: AdminRequest) -> Reply:
        data = request.json()
        name, dep_id = data.get("stageName"), data.get("deploymentId")
        if not isinstance(name, str) or not name or not isinstance(dep_id, str):
            raise BadRequest("stageName and deploymentId are required")
        async with self.control.lock:
            api = self.control.api(request.params["restapi_id"], REST)
            if name in api.stages:
                raise Conflict("Stage already exists")
            self.control.check_deployment(api, dep_id)
            settings = StageSettings(deployment_id=dep_id)
            if isinstance(data.get("canarySettings"), dict):
                settings = replace(settings, canary=_canary(data["canarySettings"], dep_id))
            rec = StageRecord(
                api.api_id,
                name,
                replace(settings, cache_cluster_enabled=bool(data.get("cacheClusterEnabled"))),
                variables=_strings(data.get("variables"), "variables"),
                description=str(data.get("description") or ""),
                tracing=bool(data.get("tracingEnabled")),
                created_s=self.control.clock(),
            )
            await self.control.commit([put(STAGE, stage_key(api.api_id, name), rec)])
        return Reply(201, stage(rec))

    async def get_stages(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["restapi_id"], REST)
        wanted = request.query.get("deploymentId")
        records = [self.control.stage(api, name) for name in api.stages]
        items = [stage(r) for r in records if not wanted or r.settings.deployment_id == wanted]
        return Reply(200, {"item": items})

    async def get_stage(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["restapi_id"], REST)
        return Reply(200, stage(self.control.stage(api, request.params["stage_name"])))

    async def update_stage(self, request: AdminRequest) -> Reply:
        operations = request.json().get("patchOperations") or []
        if not isinstance(operations, list):
            raise BadRequest("patchOperations must be a list")
        async with self.control.lock:
            api = self.control.api(request.params["restapi_id"], REST)
            current = self.control.stage(api, request.params["stage_name"])

            def check(dep_id: str) -> None:
                self.control.check_deployment(api, dep_id)

            updated = apply_patch(current, operations, check)
            updated = replace(updated, updated_s=self.control.clock())
            await self.control.commit([put(STAGE, stage_key(api.api_id, current.name), updated)])
        return Reply(200, stage(updated))

    async def delete_stage(self, request: AdminRequest) -> Reply:
        async with self.control.lock:
            api = self.control.api(request.params["restapi_id"], REST)
            name = request.params["stage_name"]
            key = stage_key(api.api_id, name)
            if key not in self.control.records.stages:
                if name in api.stages:
                    raise Conflict(
                        "This stage comes from the template; change the template instead"
                    )
                raise NotFound("Invalid stage identifier specified")
            await self.control.commit([drop(STAGE, key)])
        return Reply(202)

    async def flush_stage_cache(self, request: AdminRequest) -> Reply:
        api = self.control.api(request.params["restapi_id"], REST)
        name = request.params["stage_name"]
        if name not in api.stages:
            raise NotFound("Invalid stage identifier specified")
        if self.flush_cache is not None:
            await self.flush_cache(api.api_id, name)
        return Reply(202)


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a map of strings")
    return {str(k): str(v) for k, v in value.items()}


def _canary(spec: dict[str, Any], dep_id: str) -> Canary:
    percent = float(spec.get("percentTraffic") or 0.0)
    if not 0.0 <= percent <= 100.0:
        raise BadRequest("Canary percentTraffic must be between 0.0 and 100.0")
    return Canary(
        deployment_id=str(spec.get("deploymentId") or dep_id),
        percent_traffic=percent,
        stage_variable_overrides=_strings(
            spec.get("stageVariableOverrides"), "stageVariableOverrides"
        ),
        use_stage_cache=bool(spec.get("useStageCache")),
    )
