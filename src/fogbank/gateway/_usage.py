"""API keys, usage plans, quotas and throttling: the step after routing and authentication.

REST APIs, in AWS's order:

1. A route with `api_key_required` needs a key: the `x-api-key` header (`apiKeySource` HEADER)
   or the Lambda authorizer's `usageIdentifierKey` (AUTHORIZER). A missing, unknown or disabled
   key, or one in no usage plan covering this API stage, gets 403 `Forbidden`.
2. Throttling, each level a token bucket in the store; the first empty bucket answers 429
   `Too Many Requests`:
   - the usage plan, per API key: the plan's per-method throttle for this method if it has one,
     else the plan's throttle;
   - the stage, per method: the stage's method settings for this method if they throttle, else
     the stage default (`*/*`);
   - the account (`NodeConfig.account_throttle`).
   A more specific setting replaces the general one of its level, as on AWS; levels stack.
3. The plan's quota, per key and period window: 429 `Limit Exceeded` once spent. Admitted
   requests are recorded per key and day, for `GetUsage`.

HTTP APIs have no keys: the route's throttle (`RouteSettings`) or the stage default
(`DefaultRouteSettings`), per route, then the account. Function URLs are not throttled here (on
AWS only concurrency limits them).
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from fogbank.gateway._errors import GatewayError, throttled
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.model import (
    Api,
    ApiKey,
    ApiKind,
    App,
    Quota,
    QuotaPeriod,
    Route,
    Throttle,
    UsagePlan,
    UsagePlanStage,
)
from fogbank.model._management import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT
from fogbank.store import Clock, Stores

API_KEY_HEADER = "x-api-key"
ACCOUNT_BUCKET = "account"
ACCOUNT_THROTTLE = Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT)
"""AWS's default account-level limit: 10,000 requests a second, bursts of 5,000."""

# Quota counters outlive their window by this much, for nodes whose clocks differ a little.
WINDOW_GRACE_S = 3600


def forbidden() -> GatewayError:
    """A key that is missing, unknown, disabled or not in a plan for this stage (REST)."""
    return GatewayError(403, "Forbidden", "ForbiddenException")


def limit_exceeded() -> GatewayError:
    """The key's usage plan quota for the current period is spent (REST)."""
    return GatewayError(429, "Limit Exceeded", "LimitExceededException")


def _month_start(year: int, month: int, offset: int) -> datetime.date:
    return datetime.date(year, month, 1) + datetime.timedelta(days=offset)


def quota_window(quota: Quota, now: float) -> tuple[str, int]:
    """The quota window `now` falls in, as an id (`WEEK:2026-11-23`), and seconds to its end.

    Windows are UTC. Days start at midnight; weeks on Monday and months on the 1st, each moved
    `offset` days later (`Quota.offset`).
    """
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    today = moment.date()
    if quota.period is QuotaPeriod.DAY:
        start, end = today, today + datetime.timedelta(days=1)
    elif quota.period is QuotaPeriod.WEEK:
        start = today - datetime.timedelta(days=(today.weekday() - quota.offset) % 7)
        end = start + datetime.timedelta(days=7)
    else:
        year, month = today.year, today.month
        start = _month_start(year, month, quota.offset)
        if today < start:
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
            start = _month_start(year, month, quota.offset)
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
        end = _month_start(year, month, quota.offset)
    ends_at = datetime.datetime.combine(end, datetime.time(), datetime.UTC).timestamp()
    return f"{quota.period.value}:{start.isoformat()}", int(ends_at - now) + WINDOW_GRACE_S


@dataclass(frozen=True, slots=True)
class _Grant:
    """A key's admission to one API stage, through one usage plan."""

    key: ApiKey
    plan: UsagePlan
    stage: UsagePlanStage


_Bucket = tuple[str, Throttle]
_RouteId = tuple[str, str, str, str]
"""(API id, stage, method, path) of a matched route."""


class _Index:
    """Lookups for one app snapshot: keys by value, plans by key and stage, stage buckets."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.keys = {key.value: key for key in app.api_keys.values()}
        self.grants: dict[tuple[str, str, str], _Grant] = {}
        for key in app.api_keys.values():
            plans = (app.usage_plans.get(plan_id) for plan_id in key.plan_ids)
            for plan in (plan for plan in plans if plan is not None):
                for stage in plan.stages:
                    grant = _Grant(key, plan, stage)
                    self.grants.setdefault((key.key_id, stage.api_id, stage.stage), grant)
        self._stage_buckets: dict[_RouteId, _Bucket | None] = {}

    def stage_bucket(self, api: Api, stage: str, route: Route) -> _Bucket | None:
        """The stage-level bucket of a route (memoised: it depends on the snapshot alone)."""
        rid = (api.api_id, stage, route.method, route.path)
        try:
            return self._stage_buckets[rid]
        except KeyError:
            pass
        bucket = _stage_bucket(api, stage, route)
        self._stage_buckets[rid] = bucket
        return bucket


def method_key(route: Route) -> str:
    """`/items/{id}/GET`: how usage plans and stage method settings name a REST method."""
    return f"{route.path}/{route.method}"


def _stage_bucket(api: Api, stage: str, route: Route) -> _Bucket | None:
    settings = api.management.stage_settings.get(stage)
    if settings is None:
        return None
    throttle: Throttle | None
    if api.kind is ApiKind.HTTP:
        throttle = settings.route_throttle.get(route.route_key) or settings.throttle
    else:
        wanted = (
            method_key(route),
            f"{route.path}/*",
            f"*/{route.method}",
            "*/*",
        )
        throttles = (settings.method_settings.get(key) for key in wanted)
        found = next((ms.throttle for ms in throttles if ms and ms.throttle), None)
        throttle = found or settings.throttle
    if throttle is None:
        return None
    return f"stage:{api.api_id}:{stage}:{route.method} {route.path}", throttle


class UsagePlans:
    """The pipeline step: API keys, usage plans, quotas and throttling (see the module doc)."""

    def __init__(
        self,
        stores: Stores,
        *,
        clock: Clock = time.time,
        account: Throttle = ACCOUNT_THROTTLE,
    ) -> None:
        self._limiter = stores.limiter
        self._quotas = stores.quotas
        self._clock = clock
        self._account = account
        self._index: _Index | None = None

    def _lookups(self, app: App) -> _Index:
        index = self._index
        if index is None or index.app is not app:
            index = self._index = _Index(app)
        return index

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch):
            return None
        index = self._lookups(exchange.app)
        api, route, stage = match.api, match.route, match.stage.name
        grant = None
        if api.kind is ApiKind.REST and route.api_key_required:
            grant = self._grant(exchange, index, api, stage)
            exchange.notes["api_key"] = grant.key
            plan_throttle = grant.stage.method_throttle.get(method_key(route))
            if plan_throttle is not None:
                bucket = f"plan:{grant.plan.plan_id}:{grant.key.key_id}:{api.api_id}:{stage}"
                await self._take(exchange, f"{bucket}:{method_key(route)}", plan_throttle)
            elif grant.plan.throttle is not None:
                bucket = f"plan:{grant.plan.plan_id}:{grant.key.key_id}"
                await self._take(exchange, bucket, grant.plan.throttle)
        stage_bucket = index.stage_bucket(api, stage, route)
        if stage_bucket is not None:
            await self._take(exchange, *stage_bucket)
        await self._take(exchange, ACCOUNT_BUCKET, self._account)
        if grant is not None:
            await self._count(grant)
        return None

    def _grant(self, exchange: Exchange, index: _Index, api: Api, stage: str) -> _Grant:
        if api.api_key_source == "AUTHORIZER":
            value = (exchange.authorizer or {}).get("usageIdentifierKey")
        else:
            value = exchange.request.header(API_KEY_HEADER)
        key = index.keys.get(value) if isinstance(value, str) else None
        if key is None or not key.enabled:
            raise forbidden()
        grant = index.grants.get((key.key_id, api.api_id, stage))
        if grant is None:
            raise forbidden()
        return grant

    async def _take(self, exchange: Exchange, bucket: str, throttle: Throttle) -> None:
        if not await self._limiter.acquire(bucket, throttle.rate_limit, throttle.burst_limit):
            raise throttled(exchange.kind)

    async def _count(self, grant: _Grant) -> None:
        now = self._clock()
        plan, key_id = grant.plan, grant.key.key_id
        if plan.quota is not None:
            window, ttl_s = quota_window(plan.quota, now)
            allowed, _ = await self._quotas.consume(
                f"{plan.plan_id}:{key_id}", plan.quota.limit, window, ttl_s
            )
            if not allowed:
                raise limit_exceeded()
        day = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
        await self._quotas.record_usage(plan.plan_id, key_id, day)
