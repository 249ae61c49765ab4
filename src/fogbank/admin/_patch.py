"""`UpdateStage`'s patch operations, applied to a stage record as API Gateway applies them.

Supported paths (values are strings on the wire, as in AWS's API):

- `/description`, `/cacheClusterEnabled`, `/cacheClusterSize`, `/tracingEnabled`;
- `/deploymentId` (a rollback re-points the stage), or `copy` from `/canarySettings/deploymentId`;
- `/variables/{name}` (`add`, `replace`, `remove`), or `copy` from
  `/canarySettings/stageVariableOverrides` (merged into the stage's variables);
- `/canarySettings` (`remove` ends the canary), `/canarySettings/percentTraffic`,
  `/canarySettings/deploymentId`, `/canarySettings/useStageCache`,
  `/canarySettings/stageVariableOverrides/{name}`;
- `/{resourcePath}/{method}/throttling/rateLimit|burstLimit` and
  `/{resourcePath}/{method}/caching/enabled|ttlInSeconds|requireAuthorizationForCacheControl|
  unauthorizedCacheControlHeaderStrategy|dataEncrypted`, with the resource path's `/` written
  `~1` (`/~1items/GET/...`) or `/*/*/...` for every method; `metrics/enabled` and `logging/*`
  are accepted and have no effect locally.

Promotion is three operations, as AWS documents it: `replace /canarySettings/percentTraffic 0`,
`copy /canarySettings/stageVariableOverrides -> /variables`, `copy /canarySettings/deploymentId
-> /deploymentId`; then `remove /canarySettings` if the canary should go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fogbank.admin._errors import BadRequest
from fogbank.admin._records import StageRecord
from fogbank.model import Canary, MethodSettings, StageSettings, Throttle
from fogbank.model._management import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT

ALL_METHODS = "*/*"
_STRATEGIES = ("FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER")
_IGNORED = {("metrics", "enabled"), ("logging", "loglevel"), ("logging", "dataTrace")}


def apply_patch(
    stage: StageRecord,
    operations: list[Mapping[str, Any]],
    check_deployment: Callable[[str], None],
) -> StageRecord:
    """The stage after every operation, or 400 for the first one that is not valid."""
    for operation in operations:
        if not isinstance(operation, Mapping):
            raise BadRequest("patchOperations must be a list of operations")
        stage = _one(stage, operation, check_deployment)
    return stage


def _one(
    stage: StageRecord, operation: Mapping[str, Any], check_deployment: Callable[[str], None]
) -> StageRecord:
    op, path = str(operation.get("op", "")), str(operation.get("path", ""))
    value = operation.get("value")
    settings = stage.settings
    if op not in ("add", "replace", "remove", "copy", "move", "test"):
        raise BadRequest(f"Invalid patch operation specified: {op}")
    if op == "copy":
        return _copy(stage, str(operation.get("from", "")), path, check_deployment)
    parts = path.split("/")[1:] if path.startswith("/") else []
    if path == "/description":
        return replace(stage, description=_text(op, value, path))
    if path == "/cacheClusterEnabled":
        return _settings(stage, cache_cluster_enabled=_flag(_text(op, value, path), path))
    if path == "/cacheClusterSize":
        return replace(stage, cache_cluster_size=_text(op, value, path))
    if path == "/tracingEnabled":
        return replace(stage, tracing=_flag(_text(op, value, path), path))
    if path == "/deploymentId":
        deployment = _text(op, value, path)
        check_deployment(deployment)
        return _settings(stage, deployment_id=deployment)
    if len(parts) == 2 and parts[0] == "variables":
        variables = dict(stage.variables)
        if op == "remove":
            variables.pop(parts[1], None)
        else:
            variables[parts[1]] = _text(op, value, path)
        return replace(stage, variables=variables)
    if parts and parts[0] == "canarySettings":
        return _settings(stage, canary=_canary(settings, op, parts[1:], value, check_deployment))
    if len(parts) == 4:
        # Stored as the template loader stores them (`/items/{id}/GET`), so that every reader
        # (throttling, caching) finds a setting whichever way it was made.
        resource = parts[0] if parts[0] == "*" else parts[0].replace("~1", "/")
        key = f"{resource}/{parts[1]}"
        methods = dict(settings.method_settings)
        current = methods.get(key, MethodSettings())
        if (parts[2], parts[3]) in _IGNORED:
            return stage
        if op == "remove":
            methods.pop(key, None)
        else:
            methods[key] = _method(current, parts[2], parts[3], _text(op, value, path), path)
        throttle = settings.throttle
        if key == ALL_METHODS:
            throttle = methods[key].throttle if key in methods else None
        return _settings(stage, method_settings=methods, throttle=throttle)
    raise BadRequest(f"Invalid patch path {path}")


def _copy(
    stage: StageRecord, source: str, path: str, check_deployment: Callable[[str], None]
) -> StageRecord:
    canary = stage.settings.canary
    if canary is None:
        raise BadRequest("The stage has no canary settings to copy from")
    if source == "/canarySettings/deploymentId" and path == "/deploymentId":
        check_deployment(canary.deployment_id)
        return _settings(stage, deployment_id=canary.deployment_id)
    if source == "/canarySettings/stageVariableOverrides" and path == "/variables":
        return replace(stage, variables={**stage.variables, **canary.stage_variable_overrides})
    raise BadRequest(f"Invalid copy from {source} to {path}")


def _canary(
    settings: StageSettings,
    op: str,
    parts: list[str],
    value: Any,
    check_deployment: Callable[[str], None],
) -> Canary | None:
    if not parts:
        if op != "remove":
            raise BadRequest("Only remove is supported on /canarySettings as a whole")
        return None
    canary = settings.canary or Canary(deployment_id=settings.deployment_id)
    where = "/canarySettings/" + "/".join(parts)
    if parts == ["percentTraffic"]:
        percent = _number(_text(op, value, where), where)
        if not 0.0 <= percent <= 100.0:
            raise BadRequest("Canary percentTraffic must be between 0.0 and 100.0")
        return replace(canary, percent_traffic=percent)
    if parts == ["deploymentId"]:
        deployment = _text(op, value, where)
        check_deployment(deployment)
        return replace(canary, deployment_id=deployment)
    if parts == ["useStageCache"]:
        return replace(canary, use_stage_cache=_flag(_text(op, value, where), where))
    if len(parts) == 2 and parts[0] == "stageVariableOverrides":
        overrides = dict(canary.stage_variable_overrides)
        if op == "remove":
            overrides.pop(parts[1], None)
        else:
            overrides[parts[1]] = _text(op, value, where)
        return replace(canary, stage_variable_overrides=overrides)
    raise BadRequest(f"Invalid patch path {where}")


def _method(
    current: MethodSettings, group: str, name: str, value: str, path: str
) -> MethodSettings:
    throttle = current.throttle or Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT)
    if (group, name) == ("throttling", "rateLimit"):
        return replace(current, throttle=replace(throttle, rate_limit=_number(value, path)))
    if (group, name) == ("throttling", "burstLimit"):
        return replace(current, throttle=replace(throttle, burst_limit=int(_number(value, path))))
    if (group, name) == ("caching", "enabled"):
        return replace(current, caching_enabled=_flag(value, path))
    if (group, name) == ("caching", "ttlInSeconds"):
        ttl = int(_number(value, path))
        if not 0 <= ttl <= 3600:
            raise BadRequest("Cache ttl must be between 0 and 3600 seconds")
        return replace(current, cache_ttl_s=ttl)
    if (group, name) == ("caching", "requireAuthorizationForCacheControl"):
        return replace(current, require_authorization_for_cache_control=_flag(value, path))
    if (group, name) == ("caching", "unauthorizedCacheControlHeaderStrategy"):
        if value not in _STRATEGIES:
            raise BadRequest(
                f"Invalid value {value} for {path}; use one of {', '.join(_STRATEGIES)}"
            )
        return replace(current, unauthorized_cache_control_header_strategy=value)
    if (group, name) == ("caching", "dataEncrypted"):
        return current  # nothing to encrypt locally
    raise BadRequest(f"Invalid patch path {path}")


def _settings(stage: StageRecord, **changes: Any) -> StageRecord:
    return replace(stage, settings=replace(stage.settings, **changes))


def _text(op: str, value: Any, path: str) -> str:
    if op == "remove":
        return ""
    if value is None:
        raise BadRequest(f"A value is required for {op} {path}")
    return str(value)


def _number(value: str, path: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"Invalid number {value!r} for {path}") from None


def _flag(value: str, path: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid boolean {value!r} for {path}")
    return value.lower() == "true"
