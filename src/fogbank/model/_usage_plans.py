"""API keys, usage plans and stage throttling settings, from a template's resolved resources.

Reads `AWS::ApiGateway::ApiKey`, `UsagePlan` and `UsagePlanKey` (SAM's `Auth.ApiKeyRequired` and
`Auth.UsagePlan` arrive as these), REST stages' `MethodSettings` (on `AWS::ApiGateway::Stage`, or
on a `Deployment`'s `StageDescription` with its stage-wide `Throttling*`), and HTTP API stages'
`DefaultRouteSettings` and `RouteSettings`. It runs after the APIs are built and adds to their
`management.stage_settings`, keeping whatever other settings are already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fogbank.model._api import Api, api_id_for
from fogbank.model._integrations import METHODS, Where
from fogbank.model._intrinsics import text
from fogbank.model._management import (
    ACCOUNT_BURST_LIMIT,
    ACCOUNT_RATE_LIMIT,
    ApiKey,
    MethodSettings,
    Quota,
    QuotaPeriod,
    StageSettings,
    Throttle,
    UsagePlan,
    UsagePlanStage,
)

API_KEY = "AWS::ApiGateway::ApiKey"
USAGE_PLAN = "AWS::ApiGateway::UsagePlan"
USAGE_PLAN_KEY = "AWS::ApiGateway::UsagePlanKey"
USAGE_TYPES = frozenset((API_KEY, USAGE_PLAN, USAGE_PLAN_KEY))
"""The resource types read here (the API loader leaves them out of its warnings)."""

MIN_KEY_LENGTH, MAX_KEY_LENGTH = 20, 128
GENERATED_KEY_LENGTH = 40
ALL_METHODS = "*/*"
# How many days a quota window may start after its natural start (midnight, Monday, the 1st).
_MAX_OFFSET = {QuotaPeriod.DAY: 0, QuotaPeriod.WEEK: 6, QuotaPeriod.MONTH: 27}
_REST_STAGE = "AWS::ApiGateway::Stage"
_REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
_HTTP_STAGE = "AWS::ApiGatewayV2::Stage"


@dataclass(frozen=True, slots=True)
class Managed:
    """The APIs with their throttling settings, the usage plans and keys, and warnings."""

    apis: tuple[Api, ...] = ()
    usage_plans: tuple[UsagePlan, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    warnings: tuple[str, ...] = ()


def build_usage_plans(
    resources: Mapping[str, Mapping[str, Any]], apis: Sequence[Api], *, file: str
) -> Managed:
    """Read keys, plans and stage throttles; a `TemplateError` names file, resource, property."""
    by_logical_id = {api.logical_id: api for api in apis if api.logical_id}
    return _Reader(resources, by_logical_id, file).read(apis)


def generated_key_value(logical_id: str) -> str:
    """The value of a key the template gives none (AWS draws 40 random characters).

    Derived from the logical id, so it stays the same across restarts and reloads.
    """
    digest = hashlib.sha256(f"fogbank-api-key:{logical_id}".encode()).hexdigest()
    return digest[:GENERATED_KEY_LENGTH]


def read_throttle(where: Where, props: Mapping[str, Any], rate: str, burst: str) -> Throttle | None:
    """A throttle from two properties, None when neither is set. A missing one is the account's
    default, the bound a limit left unset has on AWS."""
    rate_value, burst_value = props.get(rate), props.get(burst)
    if rate_value is None and burst_value is None:
        return None
    if rate_value is None:
        rate_limit = ACCOUNT_RATE_LIMIT
    else:
        try:
            rate_limit = float(text(rate_value))
        except (TypeError, ValueError):
            raise where.at(rate).error(f"expected requests a second, got {rate_value!r}") from None
        if not rate_limit >= 0:  # NaN fails this too
            raise where.at(rate).error(f"{rate_value} is below the minimum, 0")
    burst_limit = (
        ACCOUNT_BURST_LIMIT if burst_value is None else where.at(burst).number(burst_value, low=0)
    )
    return Throttle(rate_limit, burst_limit)


def method_path(where: Where, resource_path: str, http_method: str) -> str:
    """A method's key, `/items/{id}/GET` (`*/*`: every method), from a resource path written as
    CloudFormation encodes it (`/~1items~1{id}`) or plainly (`/items/{id}`), and a method."""
    path = resource_path.replace("~1", "/")
    if resource_path.startswith("/~1"):
        path = path[1:]
    method = http_method.upper()
    if path in ("/*", "*"):
        if method != "*" and method not in METHODS:
            raise where.error(f"unknown HTTP method {http_method!r}")
        return f"*/{method}"
    if not path.startswith("/") or "//" in path:
        raise where.error(f"expected a resource path like /items, got {resource_path!r}")
    if method != "*" and method not in METHODS:
        raise where.error(f"unknown HTTP method {http_method!r}")
    return f"{path.rstrip('/') or '/'}/{method}"


def _api_ref(value: Any) -> str:
    """The logical id in `!Ref Api` or `!GetAtt Api.RestApiId` (resolved to text)."""
    return str(value).removesuffix(".RestApiId").removesuffix(".ApiId")


@dataclass(frozen=True, slots=True)
class _StageThrottles:
    """What one stage resource says about throttling."""

    api: Api
    stage: str
    default: Throttle | None = None
    routes: Mapping[str, Throttle] = field(default_factory=dict)
    methods: Mapping[str, Throttle] = field(default_factory=dict)

    def merged(self, settings: StageSettings) -> StageSettings:
        methods = dict(settings.method_settings)
        for key, throttle in self.methods.items():
            methods[key] = replace(methods.get(key, MethodSettings()), throttle=throttle)
        default = self.default or self.methods.get(ALL_METHODS) or settings.throttle
        routes = {**settings.route_throttle, **self.routes}
        return replace(settings, throttle=default, route_throttle=routes, method_settings=methods)


@dataclass
class _Reader:
    resources: Mapping[str, Mapping[str, Any]]
    apis: Mapping[str, Api]
    file: str
    warnings: list[str] = field(default_factory=list)

    def _of_type(self, kind: str) -> list[tuple[str, Where, Mapping[str, Any]]]:
        return [
            (logical_id, Where(self.file, logical_id), resource["Properties"])
            for logical_id, resource in self.resources.items()
            if resource["Type"] == kind
        ]

    def read(self, apis: Sequence[Api]) -> Managed:
        stages: dict[str, dict[str, StageSettings]] = {}
        for found in self._stage_throttles():
            if not (found.default or found.routes or found.methods):
                continue
            api_stages = stages.setdefault(
                found.api.api_id, dict(found.api.management.stage_settings)
            )
            api_stages[found.stage] = found.merged(api_stages.get(found.stage, StageSettings()))
        updated = tuple(
            replace(api, management=replace(api.management, stage_settings=stages[api.api_id]))
            if api.api_id in stages
            else api
            for api in apis
        )
        plans = {lid: self._plan(where, props) for lid, where, props in self._of_type(USAGE_PLAN)}
        keys = {lid: self._key(where, props) for lid, where, props in self._of_type(API_KEY)}
        self._check_unique_values(keys)
        attached = self._attach(keys, plans)
        return Managed(updated, tuple(plans.values()), attached, tuple(self.warnings))

    # Stage settings

    def _stage_throttles(self) -> list[_StageThrottles]:
        found: list[_StageThrottles] = []
        named: set[tuple[str, str]] = set()
        for _, where, props in self._of_type(_REST_STAGE):
            api = self.apis.get(_api_ref(props.get("RestApiId")))
            if api is not None:
                name = where.at("StageName").text(props.get("StageName"))
                named.add((api.api_id, name))
                found.append(_StageThrottles(api, name, methods=self._methods(where, props)))
        for _, where, props in self._of_type(_REST_DEPLOYMENT):
            api = self.apis.get(_api_ref(props.get("RestApiId")))
            if api is None or props.get("StageName") is None:
                continue
            name = where.at("StageName").text(props["StageName"])
            if (api.api_id, name) in named:
                continue  # a Stage resource of that name wins, as in the API loader
            at = where.at("StageDescription")
            described = at.mapping(props.get("StageDescription"))
            default = read_throttle(at, described, "ThrottlingRateLimit", "ThrottlingBurstLimit")
            methods = self._methods(at, described)
            if default is not None:
                methods.setdefault(ALL_METHODS, default)
            found.append(_StageThrottles(api, name, default=default, methods=methods))
        for _, where, props in self._of_type(_HTTP_STAGE):
            api = self.apis.get(_api_ref(props.get("ApiId")))
            if api is not None:
                found.append(self._http_stage(api, where, props))
        return found

    def _methods(self, where: Where, props: Mapping[str, Any]) -> dict[str, Throttle]:
        settings = props.get("MethodSettings")
        if settings is None:
            return {}
        if not isinstance(settings, list):
            raise where.at("MethodSettings").error(f"expected a list, got {settings!r}")
        methods: dict[str, Throttle] = {}
        for index, entry in enumerate(settings):
            at = where.at(f"MethodSettings[{index}]")
            entry = at.mapping(entry)
            path = at.at("ResourcePath").text(entry.get("ResourcePath"), default="/*")
            verb = at.at("HttpMethod").text(entry.get("HttpMethod"), default="*")
            throttle = read_throttle(at, entry, "ThrottlingRateLimit", "ThrottlingBurstLimit")
            if throttle is not None:
                methods[method_path(at, path, verb)] = throttle
        return methods

    def _http_stage(self, api: Api, where: Where, props: Mapping[str, Any]) -> _StageThrottles:
        name = where.at("StageName").text(props.get("StageName"))
        default_at = where.at("DefaultRouteSettings")
        default = read_throttle(
            default_at,
            default_at.mapping(props.get("DefaultRouteSettings")),
            "ThrottlingRateLimit",
            "ThrottlingBurstLimit",
        )
        routes: dict[str, Throttle] = {}
        routes_at = where.at("RouteSettings")
        for route_key, entry in routes_at.mapping(props.get("RouteSettings")).items():
            at = routes_at.at(str(route_key))
            throttle = read_throttle(
                at, at.mapping(entry), "ThrottlingRateLimit", "ThrottlingBurstLimit"
            )
            if throttle is not None:
                routes[str(route_key)] = throttle
        return _StageThrottles(api, name, default=default, routes=routes)

    # Usage plans and keys

    def _stage_name(self, value: Any, where: Where) -> str:
        """A stage named directly, or through `!Ref` to its `AWS::ApiGateway::Stage`."""
        name = where.text(value)
        resource = self.resources.get(name)
        if resource is not None and resource["Type"] == _REST_STAGE:
            stage_at = Where(self.file, name, "StageName")
            return stage_at.text(resource["Properties"].get("StageName"))
        return name

    def _plan(self, where: Where, props: Mapping[str, Any]) -> UsagePlan:
        logical_id = str(where.resource)
        stages: list[UsagePlanStage] = []
        stages_at = where.at("ApiStages")
        entries = props.get("ApiStages") or []
        if not isinstance(entries, list):
            raise stages_at.error(f"expected a list, got {entries!r}")
        for index, entry in enumerate(entries):
            at = Where(self.file, where.resource, f"ApiStages[{index}]")
            entry = at.mapping(entry)
            ref = _api_ref(at.at("ApiId").text(entry.get("ApiId")))
            api = self.apis.get(ref)
            if api is None:
                self.warnings.append(
                    f"{logical_id}: API {ref} is not in this template; its stage is ignored"
                )
                continue
            stage = self._stage_name(entry.get("Stage"), at.at("Stage"))
            if stage not in api.stages:
                raise at.at("Stage").error(f"{stage} is not a stage of {ref}")
            throttles: dict[str, Throttle] = {}
            throttle_at = at.at("Throttle")
            for key, value in throttle_at.mapping(entry.get("Throttle")).items():
                method_at = throttle_at.at(str(key))
                path, _, verb = str(key).rpartition("/")
                found = read_throttle(
                    method_at, method_at.mapping(value), "RateLimit", "BurstLimit"
                )
                if found is not None:
                    throttles[method_path(method_at, path or "/", verb)] = found
            stages.append(UsagePlanStage(api.api_id, stage, throttles))
        return UsagePlan(
            plan_id=api_id_for(logical_id, salt="usageplan:"),
            name=where.at("UsagePlanName").text(props.get("UsagePlanName"), default=logical_id),
            stages=tuple(stages),
            throttle=read_throttle(
                where.at("Throttle"),
                where.at("Throttle").mapping(props.get("Throttle")),
                "RateLimit",
                "BurstLimit",
            ),
            quota=self._quota(where.at("Quota"), props.get("Quota")),
            description=where.at("Description").text(props.get("Description"), default=""),
        )

    def _quota(self, where: Where, value: Any) -> Quota | None:
        if value is None:
            return None
        props = where.mapping(value)
        period_name = where.at("Period").text(props.get("Period"), default="").upper()
        if period_name not in QuotaPeriod.__members__:
            raise where.at("Period").error(
                f"unknown period {period_name or '(none)'} (use DAY, WEEK or MONTH)"
            )
        period = QuotaPeriod(period_name)
        offset = where.at("Offset").number(props.get("Offset", 0), low=0, high=_MAX_OFFSET[period])
        limit = where.at("Limit").number(props.get("Limit"), low=0)
        return Quota(limit=limit, period=period, offset=offset)

    def _key(self, where: Where, props: Mapping[str, Any]) -> ApiKey:
        logical_id = str(where.resource)
        value_at = where.at("Value")
        if props.get("Value") is None:
            value = generated_key_value(logical_id)
        else:
            value = value_at.text(props["Value"])
            if not MIN_KEY_LENGTH <= len(value) <= MAX_KEY_LENGTH:
                raise value_at.error(
                    f"an API key must have {MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} characters,"
                    f" this one has {len(value)}"
                )
        stage_keys = props.get("StageKeys")
        if stage_keys is not None and not isinstance(stage_keys, list):
            # Kept by AWS for keys made before usage plans; only usage plans grant access.
            raise where.at("StageKeys").error(f"expected a list, got {stage_keys!r}")
        enabled = where.at("Enabled").flag(props.get("Enabled"))
        if not enabled:
            self.warnings.append(
                f"{logical_id}: the API key is disabled (Enabled is false, CloudFormation's"
                " default); requests with it get 403 Forbidden"
            )
        return ApiKey(
            key_id=api_id_for(logical_id, salt="apikey:"),
            name=where.at("Name").text(props.get("Name"), default=logical_id),
            value=value,
            enabled=enabled,
            description=where.at("Description").text(props.get("Description"), default=""),
        )

    def _check_unique_values(self, keys: Mapping[str, ApiKey]) -> None:
        seen: dict[str, str] = {}
        for logical_id, key in keys.items():
            if key.value in seen:
                raise Where(self.file, logical_id, "Value").error(
                    f"the same value as API key {seen[key.value]}; key values must be unique"
                )
            seen[key.value] = logical_id

    def _attach(
        self, keys: Mapping[str, ApiKey], plans: Mapping[str, UsagePlan]
    ) -> tuple[ApiKey, ...]:
        """Each key's plans from `UsagePlanKey`s; a key may be in one plan per API stage."""
        plan_ids: dict[str, list[str]] = {logical_id: [] for logical_id in keys}
        covered: dict[tuple[str, str, str], str] = {}
        for logical_id, where, props in self._of_type(USAGE_PLAN_KEY):
            key_ref = where.at("KeyId").text(props.get("KeyId"))
            plan_ref = where.at("UsagePlanId").text(props.get("UsagePlanId"))
            kind = where.at("KeyType").text(props.get("KeyType"), default="API_KEY")
            if kind != "API_KEY":
                raise where.at("KeyType").error(f"unknown key type {kind} (use API_KEY)")
            if key_ref not in keys or plan_ref not in plans:
                missing = key_ref if key_ref not in keys else plan_ref
                self.warnings.append(f"{logical_id}: {missing} is not in this template; ignored")
                continue
            plan = plans[plan_ref]
            for stage in plan.stages:
                spot = (key_ref, stage.api_id, stage.stage)
                if spot in covered and covered[spot] != plan_ref:
                    raise where.error(
                        f"API key {key_ref} is already in usage plan {covered[spot]} for stage"
                        f" {stage.stage}; a key may be in one plan per API stage"
                    )
                covered[spot] = plan_ref
            plan_ids[key_ref].append(plan.plan_id)
        return tuple(
            replace(key, plan_ids=tuple(dict.fromkeys(plan_ids[logical_id])))
            for logical_id, key in keys.items()
        )
