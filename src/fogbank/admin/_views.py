"""The admin API's answers in the JSON shapes of botocore's `apigateway` and `apigatewayv2` models.

`apigateway` (REST, 2015-07-09) writes lower camel case members, timestamps as epoch seconds and
lists under `item` (`RestApis.items` has the location name `item`, `Usage.items` is `values`);
`apigatewayv2` (2018-11-29) writes lower camel case too, timestamps as ISO 8601 and lists under
`items`.
"""

from __future__ import annotations

import datetime
from typing import Any

from fogbank.admin._records import DeploymentRecord, KeyRecord, PlanRecord, StageRecord
from fogbank.model import Api, ApiKind, MethodSettings, Throttle, UsagePlanStage
from fogbank.model._management import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT, DEFAULT_CACHE_TTL_S


def iso(epoch_s: float) -> str:
    """ISO 8601 in UTC, as `apigatewayv2` writes timestamps."""
    moment = datetime.datetime.fromtimestamp(epoch_s, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rest_api(
    api: Api, created_s: float, version: str = "", warnings: tuple[str, ...] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": api.api_id,
        "name": api.name,
        "description": api.description,
        "createdDate": created_s,
        "apiKeySource": api.api_key_source,
        "endpointConfiguration": {"types": ["EDGE"]},
        "disableExecuteApiEndpoint": api.disable_execute_api_endpoint,
        "rootResourceId": api.api_id[:6],
    }
    if version:
        out["version"] = version
    if warnings:
        out["warnings"] = list(warnings)
    if api.binary_media_types:
        out["binaryMediaTypes"] = list(api.binary_media_types)
    return out


def deployment(rec: DeploymentRecord) -> dict[str, Any]:
    dep = rec.deployment
    summary: dict[str, dict[str, Any]] = {}
    for route in dep.routes:
        summary.setdefault(route.path, {})[route.method] = {
            "authorizationType": route.authorization_type,
            "apiKeyRequired": route.api_key_required,
        }
    return {
        "id": dep.deployment_id,
        "description": dep.description,
        "createdDate": dep.created_s,
        "apiSummary": summary,
    }


def _method(settings: MethodSettings) -> dict[str, Any]:
    throttle = settings.throttle or Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT)
    return {
        "metricsEnabled": False,
        "loggingLevel": "OFF",
        "dataTraceEnabled": False,
        "throttlingBurstLimit": throttle.burst_limit,
        "throttlingRateLimit": throttle.rate_limit,
        "cachingEnabled": bool(settings.caching_enabled),
        "cacheTtlInSeconds": DEFAULT_CACHE_TTL_S
        if settings.cache_ttl_s is None
        else settings.cache_ttl_s,
        "cacheDataEncrypted": False,
        "requireAuthorizationForCacheControl": settings.require_authorization_for_cache_control,
        "unauthorizedCacheControlHeaderStrategy": settings.unauthorized_cache_control_header_strategy,
    }


def _wire_key(key: str) -> str:
    """`/items/{id}/GET` as API Gateway writes method settings keys: `~1items~1{id}/GET`."""
    resource, _, method = key.rpartition("/")
    if not resource.startswith("/"):
        return key  # `*/*`, `*/GET`
    return f"{resource.replace('/', '~1')}/{method}"


def stage(rec: StageRecord) -> dict[str, Any]:
    settings = rec.settings
    out: dict[str, Any] = {
        "stageName": rec.name,
        "deploymentId": settings.deployment_id,
        "description": rec.description,
        "cacheClusterEnabled": settings.cache_cluster_enabled,
        "cacheClusterStatus": "AVAILABLE" if settings.cache_cluster_enabled else "NOT_AVAILABLE",
        "methodSettings": {
            _wire_key(key): _method(value) for key, value in settings.method_settings.items()
        },
        "variables": dict(rec.variables),
        "tracingEnabled": rec.tracing,
        "createdDate": rec.created_s,
        "lastUpdatedDate": rec.updated_s or rec.created_s,
    }
    if settings.cache_cluster_enabled:
        out["cacheClusterSize"] = rec.cache_cluster_size
    if settings.canary is not None:
        canary = settings.canary
        out["canarySettings"] = {
            "deploymentId": canary.deployment_id,
            "percentTraffic": canary.percent_traffic,
            "stageVariableOverrides": dict(canary.stage_variable_overrides),
            "useStageCache": canary.use_stage_cache,
        }
    return out


def api_key(rec: KeyRecord, *, with_value: bool) -> dict[str, Any]:
    key = rec.key
    out: dict[str, Any] = {
        "id": key.key_id,
        "name": key.name,
        "description": key.description,
        "enabled": key.enabled,
        "createdDate": rec.created_s,
        "lastUpdatedDate": rec.updated_s,
        "stageKeys": [],
    }
    if rec.customer_id:
        out["customerId"] = rec.customer_id
    if with_value:
        out["value"] = key.value
    return out


def _throttle(throttle: Throttle) -> dict[str, Any]:
    return {"burstLimit": throttle.burst_limit, "rateLimit": throttle.rate_limit}


def _api_stage(entry: UsagePlanStage) -> dict[str, Any]:
    out: dict[str, Any] = {"apiId": entry.api_id, "stage": entry.stage}
    if entry.method_throttle:
        out["throttle"] = {path: _throttle(t) for path, t in entry.method_throttle.items()}
    return out


def usage_plan(rec: PlanRecord) -> dict[str, Any]:
    plan = rec.plan
    out: dict[str, Any] = {
        "id": plan.plan_id,
        "name": plan.name,
        "description": plan.description,
        "apiStages": [_api_stage(entry) for entry in plan.stages],
    }
    if plan.throttle is not None:
        out["throttle"] = _throttle(plan.throttle)
    if plan.quota is not None:
        quota = plan.quota
        out["quota"] = {"limit": quota.limit, "offset": quota.offset, "period": quota.period.value}
    return out


def http_api(
    api: Api, created_s: float, endpoint: str, warnings: tuple[str, ...] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiId": api.api_id,
        "name": api.name,
        "protocolType": "HTTP" if api.kind is ApiKind.HTTP else "REST",
        "routeSelectionExpression": "$request.method $request.path",
        "apiKeySelectionExpression": "$request.header.x-api-key",
        "apiEndpoint": endpoint,
        "createdDate": iso(created_s),
        "description": api.description,
        "disableExecuteApiEndpoint": api.disable_execute_api_endpoint,
    }
    if warnings:
        out["warnings"] = list(warnings)
    return out


def http_stage(rec: StageRecord) -> dict[str, Any]:
    settings = rec.settings
    defaults: dict[str, Any] = {"detailedMetricsEnabled": False}
    if settings.throttle is not None:
        defaults["throttlingBurstLimit"] = settings.throttle.burst_limit
        defaults["throttlingRateLimit"] = settings.throttle.rate_limit
    return {
        "stageName": rec.name,
        "deploymentId": settings.deployment_id,
        "autoDeploy": rec.auto_deploy,
        "description": rec.description,
        "stageVariables": dict(rec.variables),
        "defaultRouteSettings": defaults,
        "routeSettings": {
            key: {"throttlingBurstLimit": t.burst_limit, "throttlingRateLimit": t.rate_limit}
            for key, t in settings.route_throttle.items()
        },
        "createdDate": iso(rec.created_s),
        "lastUpdatedDate": iso(rec.updated_s or rec.created_s),
    }


def http_deployment(rec: DeploymentRecord) -> dict[str, Any]:
    dep = rec.deployment
    return {
        "deploymentId": dep.deployment_id,
        "deploymentStatus": "DEPLOYED",
        "description": dep.description,
        "autoDeployed": rec.auto_deployed,
        "createdDate": iso(dep.created_s),
    }
