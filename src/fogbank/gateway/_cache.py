"""The REST stage cache: a lookup step before validation and integration, a store finisher after.

A stage caches when its cache cluster is enabled (`cacheClusterEnabled`); then GET methods
cache by default, and method settings (`/items/{id}/GET`, or `~1items~1{id}/GET` as AWS writes
them; `*/*` for all) turn caching on or off (`caching/enabled`: a wildcard entry only ever covers
GET, an entry naming the method covers that method) and set the TTL (`caching/ttlInSeconds`,
default 300, 0 = off).

The key is the method, the resource path (`/items/{id}`, not the request's `/items/7`) and the
values of the integration's `cacheKeyParameters`, as on AWS: path parameters key the cache only
when declared there. Every integration response up to 1 MB is stored, whatever its status (AWS
caches a backend's 429 or 500 too); gateway errors and streamed responses never are.

`Cache-Control: max-age=0` fetches afresh and replaces the entry when the caller may invalidate
the cache: always when the method does not require authorization for it, else when the request
carries `x-fogbank-invalidate-cache: <admin token>`, or is a SigV4-signed call of an `AWS_IAM`
route whose signature the authorization step verified (fogbank's stand-ins for an
`execute-api:InvalidateCache` grant), or another step vouched for the caller
(`exchange.notes[MAY_INVALIDATE_NOTE]`). Otherwise
`unauthorizedCacheControlHeaderStrategy` decides: `FAIL_WITH_403` answers 403, the
`SUCCEED_*` strategies ignore the header (and `SUCCEED_WITH_RESPONSE_HEADER` says so in a
`Warning` header). The admin-token header never reaches the integration.

Canary requests (`exchange.notes["canary"]`) use the stage cache only when the canary's
`useStageCache` is on; otherwise they bypass it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import struct
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl

import orjson

from fogbank.gateway._canary import CANARY_NOTE
from fogbank.gateway._errors import GatewayError
from fogbank.gateway._gateway_responses import GATEWAY_ERROR_NOTE
from fogbank.gateway._pipeline import CALLER_NOTE, Exchange
from fogbank.gateway._types import HttpRequest, HttpResponse, RouteMatch
from fogbank.model import Api, ApiKind, App, MethodSettings, Route
from fogbank.model._management import DEFAULT_CACHE_TTL_S
from fogbank.store import ResponseCache

log = logging.getLogger("fogbank.gateway")

INVALIDATE_HEADER = "x-fogbank-invalidate-cache"
MAY_INVALIDATE_NOTE = "may_invalidate_cache"
"""`exchange.notes` key a step sets (True) when the caller may invalidate cache entries; a
verified SigV4 caller (`CALLER_NOTE`) may too: fogbank's stand-in for an InvalidateCache grant."""
WARNING_HEADER = (
    "warning",
    '199 - "Cache-Control: max-age=0 ignored: the caller may not invalidate the cache"',
)
MAX_ENTRY_BYTES = 1_048_576
"""API Gateway caches responses up to 1 MB."""

_PENDING_NOTE = "stage_cache"
_HEAD = struct.Struct(">I")
_PREFIX = "method.request."


@dataclass(frozen=True, slots=True)
class _Policy:
    ttl_s: int
    require_authorization: bool
    strategy: str


def stage_prefix(api_id: str, stage: str) -> str:
    """Where one stage's entries live in the response cache (it also holds other caches)."""
    return f"stage-cache:{api_id}:{stage}:"


class StageCache:
    """The lookup step (`__call__`) and the store finisher (`finish`) over one `ResponseCache`.

    Writes are queued as tasks (finishers cannot wait); a lookup of a key with a write under
    way waits for it, so a node never misses its own fresh entry.
    """

    def __init__(self, cache: ResponseCache, *, admin_token: str | None = None) -> None:
        self.cache = cache
        self._admin_token = admin_token
        self._policies: dict[tuple[str, str, str, str], _Policy | None] = {}
        self._app: App | None = None
        self._writes: dict[str, asyncio.Task[None]] = {}

    async def flush(self, api_id: str, stage: str) -> int:
        """Drop every entry of one stage (`FlushStageCache`); how many were dropped."""
        return await self.cache.flush(stage_prefix(api_id, stage))

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        request, match = exchange.request, exchange.match
        token = request.header(INVALIDATE_HEADER)
        if token is not None:
            request.headers[:] = [(k, v) for k, v in request.headers if k != INVALIDATE_HEADER]
        if not isinstance(match, RouteMatch) or match.api.kind is not ApiKind.REST:
            return None
        policy = self._policy(exchange.app, match, request.method)
        if policy is None or (exchange.notes.get(CANARY_NOTE) and not _canary_shares(match)):
            return None
        key = _key(match, request)
        invalidate, warn = _max_age_zero(request), False
        if (
            invalidate
            and policy.require_authorization
            and not self._may_invalidate(exchange, token)
        ):
            if policy.strategy == "FAIL_WITH_403":
                raise GatewayError(403, "Unauthorized", "AccessDeniedException")
            invalidate, warn = False, policy.strategy == "SUCCEED_WITH_RESPONSE_HEADER"
        if not invalidate:
            pending = self._writes.get(key)
            if pending is not None:
                await asyncio.wait([pending])
            raw = await self.cache.get(key)
            if raw is not None:
                response = _decoded(raw)
                if warn:
                    response.headers.append(WARNING_HEADER)
                return response
        exchange.notes[_PENDING_NOTE] = (key, policy.ttl_s, warn)
        return None

    def finish(self, exchange: Exchange, response: HttpResponse) -> HttpResponse:
        """Store the integration's response for the lookup that missed (runs on every answer)."""
        pending = exchange.notes.get(_PENDING_NOTE)
        if pending is None:
            return response
        key, ttl_s, warn = pending
        storable = response.stream is None and len(response.body) <= MAX_ENTRY_BYTES
        if storable and GATEWAY_ERROR_NOTE not in exchange.notes:
            task = asyncio.get_running_loop().create_task(
                self.cache.put(key, _encoded(response), ttl_s)
            )
            self._writes[key] = task
            task.add_done_callback(partial(self._written, key))
        if warn:
            response.headers.append(WARNING_HEADER)
        return response

    def _written(self, key: str, task: asyncio.Task[None]) -> None:
        if self._writes.get(key) is task:
            del self._writes[key]
        if not task.cancelled() and (error := task.exception()) is not None:
            # Caching is best effort: the client already has its answer.
            log.warning("stage cache: storing %s failed: %s", key, error)

    def _may_invalidate(self, exchange: Exchange, token: str | None) -> bool:
        if exchange.notes.get(MAY_INVALIDATE_NOTE) or exchange.notes.get(CALLER_NOTE):
            return True
        expected = self._admin_token
        return expected is not None and token is not None and hmac.compare_digest(token, expected)

    def _policy(self, app: App, match: RouteMatch, method: str) -> _Policy | None:
        """The route's cache policy in its stage; memoised per app snapshot."""
        if app is not self._app:
            self._policies.clear()
            self._app = app
        key = (match.api.api_id, match.stage.name, match.route.route_key, method)
        if key not in self._policies:
            self._policies[key] = _policy_for(match.api, match.stage.name, match.route, method)
        return self._policies[key]


def _policy_for(api: Api, stage: str, route: Route, method: str) -> _Policy | None:
    settings = api.management.stage_settings.get(stage)
    if settings is None or not settings.cache_cluster_enabled:
        return None
    escaped = route.path.replace("/", "~1")
    verbs = dict.fromkeys((route.method, method))
    # (settings, names the method?) from the most specific entry to `*/*`.
    candidates = [
        *(
            (settings.method_settings.get(f"{p}/{v}"), True)
            for p in (route.path, escaped)
            for v in verbs
        ),
        *((settings.method_settings.get(f"{p}/*"), False) for p in (route.path, escaped)),
        *((settings.method_settings.get(f"*/{v}"), True) for v in verbs),
        (settings.method_settings.get("*/*"), False),
    ]
    found: list[tuple[MethodSettings, bool]] = [(s, named) for s, named in candidates if s]
    enabled = method == "GET"
    for entry, named in found:
        if entry.caching_enabled is not None:
            enabled = entry.caching_enabled and (named or method == "GET")
            break
    ttl = next((e.cache_ttl_s for e, _ in found if e.cache_ttl_s is not None), DEFAULT_CACHE_TTL_S)
    if not enabled or ttl <= 0:
        return None
    nearest = found[0][0] if found else MethodSettings()
    return _Policy(
        ttl_s=ttl,
        require_authorization=nearest.require_authorization_for_cache_control,
        strategy=nearest.unauthorized_cache_control_header_strategy,
    )


def _canary_shares(match: RouteMatch) -> bool:
    settings = match.api.management.stage_settings.get(match.stage.name)
    canary = settings.canary if settings is not None else None
    return canary is not None and canary.use_stage_cache


def _key(match: RouteMatch, request: HttpRequest) -> str:
    """Stage prefix + `[method, resource path, [[parameter, value or null], ...]]` as JSON."""
    declared = match.api.management.cache_key_parameters.get(match.route.route_key, ())
    values: list[tuple[str, str | None]] = []
    query: list[tuple[str, str]] | None = None
    for parameter in declared:
        location, _, name = parameter[len(_PREFIX) :].partition(".")
        found: list[str]
        if location in ("querystring", "multivaluequerystring"):
            if query is None:
                raw = request.query_string.decode("utf-8", "replace")
                query = parse_qsl(raw, keep_blank_values=True)
            found = [v for k, v in query if k == name]
        elif location in ("header", "multivalueheader"):
            found = [v for k, v in request.headers if k == name.lower()]
        else:
            value = match.path_params.get(name)
            found = [] if value is None else [value]
        values.append((parameter, ",".join(found) if found else None))
    entry = orjson.dumps([request.method, match.route.path, values]).decode()
    return stage_prefix(match.api.api_id, match.stage.name) + entry


def _max_age_zero(request: HttpRequest) -> bool:
    value = request.header("cache-control")
    if value is None:
        return False
    return any(part.strip().lower().replace(" ", "") == "max-age=0" for part in value.split(","))


def _encoded(response: HttpResponse) -> bytes:
    head = orjson.dumps([response.status, response.headers])
    return _HEAD.pack(len(head)) + head + response.body


def _decoded(raw: bytes) -> HttpResponse:
    (size,) = _HEAD.unpack_from(raw)
    status, headers = orjson.loads(raw[_HEAD.size : _HEAD.size + size])
    return HttpResponse(
        status=status,
        headers=[(str(k), str(v)) for k, v in headers],
        body=raw[_HEAD.size + size :],
    )
