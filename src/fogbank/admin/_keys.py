"""`apigateway` operations on API keys, usage plans and usage.

Keys and plans made here join the template's (`AWS::ApiGateway::ApiKey`, `UsagePlan`) in the
app the gateway enforces. `GetUsage` reads the per-key daily counts the gateway's quota store
records and answers `[used, remaining]` per day, `remaining` being what the plan's quota had
left at the end of that day in its period (0 when the plan has no quota).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fogbank.admin._app import AdminRequest, Operation, Reply
from fogbank.admin._control import AdminControl
from fogbank.admin._errors import BadRequest, Conflict, NotFound
from fogbank.admin._records import KEY, PLAN, KeyRecord, PlanRecord, new_id, put
from fogbank.admin._views import api_key, usage_plan
from fogbank.model import ApiKey, Quota, QuotaPeriod, Throttle, UsagePlan, UsagePlanStage
from fogbank.store import QuotaCounter

MIN_KEY, MAX_KEY = 20, 128


class Keys:
    """Key, plan and usage operations; `quotas` returns the node's quota store."""

    def __init__(self, control: AdminControl, quotas: Callable[[], QuotaCounter | None]) -> None:
        self.control = control
        self.quotas = quotas

    def operations(self) -> list[Operation]:
        return [
            Operation("POST", "/apikeys", self.create_key),
            Operation("GET", "/apikeys", self.get_keys),
            Operation("GET", "/apikeys/{api_key}", self.get_key),
            Operation("POST", "/usageplans", self.create_plan),
            Operation("GET", "/usageplans", self.get_plans),
            Operation("GET", "/usageplans/{plan_id}", self.get_plan),
            Operation("POST", "/usageplans/{plan_id}/keys", self.create_plan_key),
            Operation("GET", "/usageplans/{plan_id}/usage", self.get_usage),
        ]

    def _key_record(self, key_id: str) -> KeyRecord:
        rec = self.control.records.keys.get(key_id)
        if rec is not None:
            return rec
        key = self.control.current().api_keys.get(key_id)
        if key is None:
            raise NotFound("Invalid API Key identifier specified")
        return KeyRecord(key, self.control.started_s, self.control.started_s)

    def _plan_record(self, plan_id: str) -> PlanRecord:
        rec = self.control.records.plans.get(plan_id)
        if rec is not None:
            return rec
        plan = self.control.current().usage_plans.get(plan_id)
        if plan is None:
            raise NotFound("Invalid Usage Plan ID specified")
        return PlanRecord(plan, self.control.started_s)

    # -- keys ---------------------------------------------------------------------------------

    async def create_key(self, request: AdminRequest) -> Reply:
        data = request.json()
        value = data.get("value")
        if value is None:
            value = new_id(40)
        if not isinstance(value, str) or not MIN_KEY <= len(value) <= MAX_KEY:
            raise BadRequest(
                f"API Key value should be at least {MIN_KEY} characters (and at most {MAX_KEY})"
            )
        async with self.control.lock:
            if any(k.value == value for k in self.control.current().api_keys.values()):
                raise Conflict("API Key already exists")
            now = self.control.clock()
            key = ApiKey(
                key_id=new_id(10),
                name=str(data.get("name") or ""),
                value=value,
                enabled=bool(data.get("enabled", False)),
                description=str(data.get("description") or ""),
            )
            rec = KeyRecord(key, now, now, str(data.get("customerId") or ""))
            await self.control.commit([put(KEY, key.key_id, rec)])
        return Reply(201, api_key(rec, with_value=True))

    async def get_keys(self, request: AdminRequest) -> Reply:
        with_values = request.query.get("includeValues") == "true"
        name = request.query.get("name")
        items = [
            api_key(self._key_record(key_id), with_value=with_values)
            for key_id, key in self.control.current().api_keys.items()
            if not name or key.name.startswith(name)
        ]
        return Reply(200, {"item": items})

    async def get_key(self, request: AdminRequest) -> Reply:
        rec = self._key_record(request.params["api_key"])
        return Reply(200, api_key(rec, with_value=request.query.get("includeValue") == "true"))

    # -- plans --------------------------------------------------------------------------------

    async def create_plan(self, request: AdminRequest) -> Reply:
        data = request.json()
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name is required")
        async with self.control.lock:
            apis = self.control.current().apis
            stages = []
            for entry in _list(data.get("apiStages"), "apiStages"):
                api_id, stage = str(entry.get("apiId", "")), str(entry.get("stage", ""))
                if api_id not in apis or stage not in apis[api_id].stages:
                    raise BadRequest(f"Invalid stage identifier specified: {api_id}/{stage}")
                method: dict[str, Throttle] = {}
                for path, spec in (entry.get("throttle") or {}).items():
                    if (throttle := _throttle(spec, f"apiStages.throttle.{path}")) is not None:
                        method[str(path)] = throttle
                stages.append(UsagePlanStage(api_id, stage, method))
            plan = UsagePlan(
                plan_id=new_id(6),
                name=name,
                stages=tuple(stages),
                throttle=_throttle(data.get("throttle"), "throttle"),
                quota=_quota(data.get("quota")),
                description=str(data.get("description") or ""),
            )
            rec = PlanRecord(plan, self.control.clock())
            await self.control.commit([put(PLAN, plan.plan_id, rec)])
        return Reply(201, usage_plan(rec))

    async def get_plans(self, request: AdminRequest) -> Reply:
        plans = self.control.current().usage_plans
        return Reply(200, {"item": [usage_plan(self._plan_record(p)) for p in plans]})

    async def get_plan(self, request: AdminRequest) -> Reply:
        return Reply(200, usage_plan(self._plan_record(request.params["plan_id"])))

    async def create_plan_key(self, request: AdminRequest) -> Reply:
        data = request.json()
        if data.get("keyType") != "API_KEY":
            raise BadRequest("keyType must be API_KEY")
        async with self.control.lock:
            plan = self._plan_record(request.params["plan_id"]).plan
            rec = self._key_record(str(data.get("keyId", "")))
            if plan.plan_id in rec.key.plan_ids:
                raise Conflict("Usage Plan already contains this API Key")
            key = replace(rec.key, plan_ids=(*rec.key.plan_ids, plan.plan_id))
            rec = replace(rec, key=key, updated_s=self.control.clock())
            await self.control.commit([put(KEY, key.key_id, rec)])
        view = {"id": key.key_id, "type": "API_KEY", "value": key.value, "name": key.name}
        return Reply(201, view)

    # -- usage --------------------------------------------------------------------------------

    async def get_usage(self, request: AdminRequest) -> Reply:
        plan = self._plan_record(request.params["plan_id"]).plan
        start, end = _date(request.query, "startDate"), _date(request.query, "endDate")
        if end < start:
            raise BadRequest("The end date must not be before the start date")
        wanted = request.query.get("keyId")
        keys = [k for k in self.control.current().api_keys.values() if plan.plan_id in k.plan_ids]
        if wanted:
            keys = [k for k in keys if k.key_id == wanted]
        quotas = self.quotas()
        counts = await quotas.usage(plan.plan_id, start, end) if quotas is not None else {}
        values = {
            key.key_id: _per_day(counts.get(key.key_id, {}), start, end, plan.quota) for key in keys
        }
        body = {
            "usagePlanId": plan.plan_id,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "values": values,
        }
        return Reply(200, body)


def _per_day(
    counts: dict[datetime.date, int], start: datetime.date, end: datetime.date, quota: Quota | None
) -> list[list[int]]:
    out: list[list[int]] = []
    used_in_period, period = 0, None
    day = start
    while day <= end:
        used = counts.get(day, 0)
        current = _period_of(day, quota)
        if current != period:
            used_in_period, period = 0, current
        used_in_period += used
        remaining = max(quota.limit - used_in_period, 0) if quota is not None else 0
        out.append([used, remaining])
        day += datetime.timedelta(days=1)
    return out


def _period_of(day: datetime.date, quota: Quota | None) -> object:
    """Which quota window a day falls in (the offset shifts the window's first day)."""
    if quota is None or quota.period is QuotaPeriod.DAY:
        return day
    shifted = day - datetime.timedelta(days=quota.offset)
    if quota.period is QuotaPeriod.WEEK:
        return shifted.isocalendar()[:2]
    return shifted.year, shifted.month


def _date(query: dict[str, str], name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(query[name])
    except (KeyError, ValueError):
        raise BadRequest(f"{name} is required, as YYYY-MM-DD") from None


def _list(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"{what} must be a list of objects")
    return value


def _throttle(spec: Any, what: str) -> Throttle | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise BadRequest(f"{what} must be an object with burstLimit and rateLimit")
    try:
        return Throttle(float(spec.get("rateLimit", 0.0)), int(spec.get("burstLimit", 0)))
    except (TypeError, ValueError):
        raise BadRequest(f"{what}: burstLimit and rateLimit must be numbers") from None


def _quota(spec: Any) -> Quota | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise BadRequest("quota must be an object with limit, offset and period")
    try:
        period = QuotaPeriod(str(spec.get("period", "")).upper())
        quota = Quota(int(spec["limit"]), period, int(spec.get("offset", 0)))
    except (KeyError, TypeError, ValueError):
        raise BadRequest("quota needs a numeric limit and a period of DAY, WEEK or MONTH") from None
    if quota.limit < 0 or quota.offset < 0:
        raise BadRequest("quota limit and offset must not be negative")
    return quota
