"""REST stage cache settings from a template: the cache cluster and the caching method settings.

An `AWS::ApiGateway::Stage` (SAM's `CacheClusterEnabled` and `MethodSettings` on an
`AWS::Serverless::Api` arrive here) or a Deployment's `StageDescription` turns the stage cache on
with `CacheClusterEnabled`, and `MethodSettings` entries set, per method or for all (`/*`, `*`),
`CachingEnabled`, `CacheTtlInSeconds` (0-3600), `RequireAuthorizationForCacheControl` and
`UnauthorizedCacheControlHeaderStrategy`. A `StageDescription` may also carry the stage-wide
`CachingEnabled` and `CacheTtlInSeconds`, which are the `*/*` method settings.

Method settings are keyed `/items/{id}/GET` (`*/*` for all methods), the key the throttling
loader uses too, so that both halves of one `MethodSettings` entry land on the same key.
Throttling fields are left to that loader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fogbank.model._integrations import METHODS, Where
from fogbank.model._management import MethodSettings, StageSettings

MAX_CACHE_TTL_S = 3600
STRATEGIES = frozenset(
    {"FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER"}
)
"""`UnauthorizedCacheControlHeaderStrategy` values."""

_CACHING_FIELDS = (
    "CachingEnabled",
    "CacheTtlInSeconds",
    "RequireAuthorizationForCacheControl",
    "UnauthorizedCacheControlHeaderStrategy",
)

# (logical id, where, properties) of one resource, as `_apis` lists an API's children.
Child = tuple[str, Where, Mapping[str, Any]]


def read_stage_caching(
    stages: Sequence[Child], deployments: Sequence[Child] = ()
) -> dict[str, StageSettings]:
    """Stage name -> its cache settings, for the stages whose resources say anything about caching.

    A `Stage` resource wins over a Deployment's `StageDescription` for the same stage name, as the
    API loader has it. Raises `TemplateError` for a TTL outside 0-3600, an unknown strategy, or a
    method setting that names no method.
    """
    found: dict[str, StageSettings] = {}
    for _, at, props in stages:
        name = at.at("StageName").text(props.get("StageName"))
        found[name] = _stage(at, props)
    for _, at, props in deployments:
        if props.get("StageName") is None:
            continue
        name = at.at("StageName").text(props["StageName"])
        if name in found:
            continue
        described_at = at.at("StageDescription")
        described = described_at.mapping(props.get("StageDescription"))
        settings = _stage(described_at, described)
        if any(described.get(key) is not None for key in _CACHING_FIELDS[:2]):
            # The stage-wide fields are the `*/*` entry; an explicit `/*` `*` entry wins.
            methods = {"*/*": _method(described_at, described), **settings.method_settings}
            settings = StageSettings(
                cache_cluster_enabled=settings.cache_cluster_enabled, method_settings=methods
            )
        found[name] = settings
    return {name: settings for name, settings in found.items() if settings != StageSettings()}


def _stage(at: Where, props: Mapping[str, Any]) -> StageSettings:
    entries = props.get("MethodSettings")
    if entries is not None and not isinstance(entries, list):
        raise at.at("MethodSettings").error(f"expected a list, got {entries!r}")
    methods: dict[str, MethodSettings] = {}
    for index, raw in enumerate(entries or ()):
        entry_at = at.at(f"MethodSettings[{index}]")
        entry = entry_at.mapping(raw)
        if not any(entry.get(key) is not None for key in _CACHING_FIELDS):
            continue  # a throttling-only entry
        path = entry_at.at("ResourcePath").text(entry.get("ResourcePath"), default="/*")
        verb = entry_at.at("HttpMethod").text(entry.get("HttpMethod"), default="*")
        methods[_method_key(entry_at, path, verb)] = _method(entry_at, entry)
    return StageSettings(
        cache_cluster_enabled=at.at("CacheClusterEnabled").flag(props.get("CacheClusterEnabled")),
        method_settings=methods,
    )


def _method(at: Where, entry: Mapping[str, Any]) -> MethodSettings:
    enabled = entry.get("CachingEnabled")
    ttl = entry.get("CacheTtlInSeconds")
    strategy_at = at.at("UnauthorizedCacheControlHeaderStrategy")
    strategy = strategy_at.text(
        entry.get("UnauthorizedCacheControlHeaderStrategy"),
        default="SUCCEED_WITH_RESPONSE_HEADER",
    )
    if strategy not in STRATEGIES:
        raise strategy_at.error(f"expected one of {', '.join(sorted(STRATEGIES))}, got {strategy}")
    require = entry.get("RequireAuthorizationForCacheControl")
    return MethodSettings(
        caching_enabled=None if enabled is None else at.at("CachingEnabled").flag(enabled),
        cache_ttl_s=None
        if ttl is None
        else at.at("CacheTtlInSeconds").number(ttl, low=0, high=MAX_CACHE_TTL_S),
        # AWS's default is to require authorization when the field is left out.
        require_authorization_for_cache_control=True
        if require is None
        else at.at("RequireAuthorizationForCacheControl").flag(require),
        unauthorized_cache_control_header_strategy=strategy,
    )


def _method_key(at: Where, resource_path: str, http_method: str) -> str:
    """`/items/{id}/GET` from CloudFormation's `/~1items~1{id}` (or plain `/items/{id}`) and a
    method; `*/*` (or `*/GET`) for the `/*` wildcard."""
    method = http_method.upper()
    if method != "*" and method not in METHODS:
        raise at.at("HttpMethod").error(f"unknown HTTP method {http_method}")
    if resource_path in ("/*", "*"):
        return f"*/{method}"
    path = resource_path.replace("~1", "/")
    if resource_path.startswith("/~1"):
        path = path[1:]  # `/~1items` is `/` + `~1items`
    if not path.startswith("/"):
        raise at.at("ResourcePath").error(f"expected a resource path like /items, got {path}")
    return f"{path}/{method}"
