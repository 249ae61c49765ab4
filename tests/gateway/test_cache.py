"""The REST stage cache over real HTTP: keys, TTLs, methods, invalidation, flush, canaries, Redis.

Cache hits are proven by the function's own log: a hit adds no `START RequestId` line.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from fogbank.model import Canary, Deployment, StageSettings

from .served_app import ServedApp, lambda_uri, sam_template

ADMIN_TOKEN = "cache-admin-token-0123456789"
HANDLER = """
import json

def handler(event, context):
    resource = event["resource"]
    if resource == "/boom":
        raise RuntimeError("boom")
    if resource == "/teapot":
        return {"statusCode": 418, "body": "short and stout"}
    if resource == "/big":
        return {"statusCode": 200, "body": "x" * (1024 * 1024 + 1)}
    headers = event.get("headers") or {}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-handler": "yes"},
        "body": json.dumps({
            "invocation": context.aws_request_id,
            "method": event["httpMethod"],
            "path": event["path"],
            "token_seen": any(k.lower() == "x-fogbank-invalidate-cache" for k in headers),
        }),
    }
"""
# (path, methods, cacheKeyParameters)
ROUTES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    (
        "/items/{id}",
        ("get",),
        (
            "method.request.path.id",
            "method.request.querystring.lang",
            "method.request.header.x-tenant",
        ),
    ),
    ("/things/{id}", ("get",), ()),
    ("/orders", ("get", "post", "put"), ()),
    ("/nocache", ("get",), ()),
    ("/strict", ("get",), ()),
    ("/open", ("get",), ()),
    ("/quiet", ("get",), ()),
    ("/teapot", ("get",), ()),
    ("/boom", ("get",), ()),
    ("/big", ("get",), ()),
]
METHOD_SETTINGS: list[dict[str, Any]] = [
    {"ResourcePath": "/*", "HttpMethod": "*", "CachingEnabled": True, "CacheTtlInSeconds": 60},
    {"ResourcePath": "/~1orders", "HttpMethod": "POST", "CachingEnabled": True},
    {"ResourcePath": "/~1nocache", "HttpMethod": "GET", "CachingEnabled": False},
    {
        "ResourcePath": "/~1strict",
        "HttpMethod": "GET",
        "UnauthorizedCacheControlHeaderStrategy": "FAIL_WITH_403",
    },
    {"ResourcePath": "/~1open", "HttpMethod": "GET", "RequireAuthorizationForCacheControl": False},
    {
        "ResourcePath": "/~1quiet",
        "HttpMethod": "GET",
        "UnauthorizedCacheControlHeaderStrategy": "SUCCEED_WITHOUT_RESPONSE_HEADER",
    },
]


def template() -> str:
    paths: dict[str, Any] = {}
    for path, methods, keys in ROUTES:
        integration: dict[str, Any] = {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": lambda_uri("Counter"),
        }
        if keys:
            integration["cacheKeyParameters"] = list(keys)
        paths[path] = {m: {"x-amazon-apigateway-integration": integration} for m in methods}
    api = {
        "StageName": "prod",
        "CacheClusterEnabled": True,
        "CacheClusterSize": "0.5",
        "MethodSettings": METHOD_SETTINGS,
        "DefinitionBody": {
            "swagger": "2.0",
            "info": {"title": "cache", "version": "1"},
            "paths": paths,
        },
    }
    return sam_template(api, "Counter")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Cached(ServedApp):
    """A node serving the cache template, with the clock its caches read."""

    def __init__(self, root: Path, **config: Any) -> None:
        self.clock = Clock()
        super().__init__(
            root,
            template(),
            handler=HANDLER,
            function="Counter",
            clock=self.clock,
            admin_token=ADMIN_TOKEN,
            **config,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, **kwargs)

    def flush(self, stage: str = "prod") -> int:
        node = self.node
        return self.thread.call(lambda: node.gateway.flush_stage_cache(self.api_id, stage))

    def redeploy(self, stage_settings: StageSettings, **api_fields: Any) -> None:
        """Serve the same API with other `prod` settings, as the admin API would deploy them."""
        node = self.node
        api = node.app.apis[self.api_id]
        management = replace(api.management, stage_settings={"prod": stage_settings})
        api = replace(api, management=management, **api_fields)
        self.thread.call(lambda: node.deploy(replace(node.app, apis={api.api_id: api})))

    def prod_settings(self) -> StageSettings:
        return self.node.app.apis[self.api_id].management.stage_settings["prod"]


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fogbank-cache-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[Cached]:
    cached = Cached(root)
    yield cached
    cached.stop()


@pytest.fixture
def node(served: Cached) -> Cached:
    """The shared node with an empty stage cache."""
    served.flush()
    return served


def without_request_id(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in ("date", "x-amzn-requestid")}


def test_a_hit_answers_with_the_stored_response_without_invoking(node: Cached) -> None:
    before = node.invocations()
    first = node.get("/items/1")
    second = node.get("/items/1")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content
    assert first.json()["path"] == "/items/1"
    assert (
        without_request_id(second)
        == without_request_id(first)
        == {
            "content-type": "application/json",
            "x-handler": "yes",
            "content-length": str(len(first.content)),
        }
    )
    # Each answer still names its own request.
    assert first.headers["x-amzn-requestid"] != second.headers["x-amzn-requestid"]
    assert node.invocations() == before + 1


def test_the_key_is_method_resource_path_and_declared_parameters(node: Cached) -> None:
    before = node.invocations()
    base = node.get("/items/1", params={"lang": "en"}, headers={"x-tenant": "a"}).json()
    same = node.get("/items/1", params={"lang": "en", "other": "x"}, headers={"x-tenant": "a"})
    assert same.json() == base  # `other` is not a cache key parameter
    assert node.invocations() == before + 1
    for params, headers, path in (
        ({"lang": "fr"}, {"x-tenant": "a"}, "/items/1"),
        ({"lang": "en"}, {"x-tenant": "b"}, "/items/1"),
        ({"lang": "en"}, {"x-tenant": "a"}, "/items/2"),  # the path parameter is declared
        ({}, {"x-tenant": "a"}, "/items/1"),  # absent is a value of its own
    ):
        assert node.get(path, params=params, headers=headers).json() != base
    assert node.invocations() == before + 5
    # Undeclared path parameters do not key the cache, as on AWS: /things/2 gets /things/1's answer.
    things = node.get("/things/1").json()
    assert node.get("/things/2").json() == things
    assert things["path"] == "/things/1"
    assert node.invocations() == before + 6


def test_entries_expire_at_their_ttl_by_the_nodes_clock(node: Cached) -> None:
    before = node.invocations()
    first = node.get("/items/ttl").json()
    node.clock.now += 59.5
    assert node.get("/items/ttl").json() == first
    node.clock.now += 0.5  # exactly the 60 s TTL
    fresh = node.get("/items/ttl").json()
    assert fresh != first
    assert node.invocations() == before + 2


def test_get_is_cached_by_default_other_methods_only_when_their_settings_say_so(
    node: Cached,
) -> None:
    before = node.invocations()
    posted = [httpx.post(node.base + "/orders", content=b"{}").json() for _ in range(2)]
    assert posted[0] == posted[1]  # `/orders POST` turns caching on for itself
    put = [httpx.put(node.base + "/orders", content=b"{}").json() for _ in range(2)]
    assert put[0] != put[1]  # `*/*` covers GET only
    assert node.get("/orders").json() == node.get("/orders").json()
    # A GET with caching turned off, and GET and POST never share an entry.
    assert node.get("/nocache").json() != node.get("/nocache").json()
    assert node.invocations() == before + 1 + 2 + 1 + 2


def test_integration_answers_of_any_status_are_cached_but_not_errors_or_big_bodies(
    node: Cached,
) -> None:
    before = node.invocations()
    for _ in range(2):
        teapot = node.get("/teapot")
        assert (teapot.status_code, teapot.text) == (418, "short and stout")
    assert node.invocations() == before + 1
    for _ in range(2):
        boom = node.get("/boom")
        assert (boom.status_code, boom.json()) == (502, {"message": "Internal server error"})
    assert node.invocations() == before + 3
    for _ in range(2):
        big = node.get("/big")
        assert (big.status_code, len(big.content)) == (200, 1024 * 1024 + 1)
    assert node.invocations() == before + 5


def test_max_age_zero_from_an_authorized_caller_refetches_and_replaces(node: Cached) -> None:
    before = node.invocations()
    old = node.get("/items/inv").json()
    fresh = node.get(
        "/items/inv",
        headers={"cache-control": "max-age=0", "x-fogbank-invalidate-cache": ADMIN_TOKEN},
    )
    assert fresh.status_code == 200
    assert fresh.json()["invocation"] != old["invocation"]
    assert fresh.json()["token_seen"] is False  # the admin token never reaches the function
    assert "warning" not in fresh.headers
    assert node.get("/items/inv").json() == fresh.json()  # the entry was replaced
    assert node.invocations() == before + 2


def test_unauthorized_invalidation_warns_and_serves_from_the_cache(node: Cached) -> None:
    before = node.invocations()
    old = node.get("/items/warn").json()
    for token in (None, "not-the-token"):
        headers = {"cache-control": "no-cache, max-age=0"}
        if token is not None:
            headers["x-fogbank-invalidate-cache"] = token
        answer = node.get("/items/warn", headers=headers)
        assert answer.json() == old
        assert answer.headers["warning"] == (
            '199 - "Cache-Control: max-age=0 ignored: the caller may not invalidate the cache"'
        )
    quiet = node.get("/quiet").json()
    answer = node.get("/quiet", headers={"cache-control": "max-age=0"})
    assert answer.json() == quiet
    assert "warning" not in answer.headers
    assert node.invocations() == before + 2


def test_fail_with_403_refuses_unauthorized_invalidation(node: Cached) -> None:
    before = node.invocations()
    node.get("/strict")
    refused = node.get("/strict", headers={"cache-control": "max-age=0"})
    assert refused.status_code == 403
    assert refused.json() == {"message": "Unauthorized"}
    assert refused.headers["x-amzn-errortype"] == "AccessDeniedException"
    allowed = node.get(
        "/strict",
        headers={"cache-control": "max-age=0", "x-fogbank-invalidate-cache": ADMIN_TOKEN},
    )
    assert allowed.status_code == 200
    assert node.invocations() == before + 2


def test_without_required_authorization_anyone_may_invalidate(node: Cached) -> None:
    before = node.invocations()
    old = node.get("/open").json()
    assert node.get("/open", headers={"cache-control": "max-age=0"}).json() != old
    assert node.invocations() == before + 2


def test_flush_stage_cache_drops_the_stages_entries(node: Cached) -> None:
    node.get("/items/f1")
    node.get("/items/f2")
    before = node.invocations()
    assert node.flush() == 2
    node.get("/items/f1")
    assert node.invocations() == before + 1
    assert node.flush("Stage") == 0


def test_a_stage_without_a_cache_cluster_never_caches(node: Cached) -> None:
    # SAM's second stage (`Stage`) has none of `prod`'s settings.
    before = node.invocations()
    url = node.base.removesuffix("/prod") + "/Stage/items/1"
    assert httpx.get(url).json() != httpx.get(url).json()
    assert node.invocations() == before + 2


@pytest.mark.parametrize("share", [False, True])
def test_canary_requests_share_the_stage_cache_only_with_use_stage_cache(
    root: Path, share: bool
) -> None:
    served = Cached(root / f"canary-{share}")
    try:
        # All traffic to a canary of the same routes.
        routes = served.node.app.apis[served.api_id].routes
        canary = Canary(deployment_id="canary1", percent_traffic=100.0, use_stage_cache=share)
        served.redeploy(
            replace(served.prod_settings(), canary=canary),
            deployments={"canary1": Deployment("canary1", routes)},
        )
        answers = [served.get("/items/1").json() for _ in range(2)]
        assert (answers[0] == answers[1]) is share
        assert served.invocations() == (1 if share else 2)
    finally:
        served.stop()


def test_nodes_sharing_redis_share_the_stage_cache(root: Path) -> None:
    prefix = f"fogbank-test-{uuid.uuid4().hex}:"
    redis = {"redis_url": "redis://127.0.0.1:6379/0", "redis_prefix": prefix}
    first, second = Cached(root / "redis", **redis), Cached(root / "redis", **redis)
    try:
        stored = first.get("/items/shared").json()
        # A hit on the same node waits for that node's write to finish: now Redis has it.
        assert first.get("/items/shared").json() == stored
        assert second.get("/items/shared").json() == stored
        assert (first.invocations(), second.invocations()) == (1, 0)
        assert second.flush() == 1
        assert first.get("/items/shared").json() != stored
    finally:
        first.flush()
        first.stop()
        second.stop()


def test_settings_without_a_cluster_are_ignored(root: Path) -> None:
    served = Cached(root / "off")
    try:
        served.redeploy(replace(served.prod_settings(), cache_cluster_enabled=False))
        assert served.get("/items/1").json() != served.get("/items/1").json()
    finally:
        served.stop()
