"""The gateway in front of discovered services, over real sockets.

Each test serves a gateway with a real registry on a free port and runs every service instance as
a real HTTP server that answers `<instance> <METHOD> <path>`. Integrations reach the instances two
ways: an HTTP API private integration (`cloud_map_service`) and an HTTP_PROXY URI whose host is
`catalog.shop.local`.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fogbank.discovery._records import IPV4, PORT, ZONE, HealthStatus
from fogbank.discovery._registry import Registry
from fogbank.functions._memory import InMemoryInvoker
from fogbank.gateway import Gateway
from fogbank.gateway._balance import Balancer
from fogbank.model import (
    Api,
    ApiKind,
    App,
    Identity,
    Integration,
    IntegrationType,
    Route,
    Stage,
)

from ..conftest import AsgiServer, LoopThread

SERVICE_UNAVAILABLE = b'{"message":"Service Unavailable"}'
INTERNAL_SERVER_ERROR = b'{"message":"Internal server error"}'


class Listener:
    """A real TCP server on a free loopback port (or a given one), served from a thread."""

    def __init__(self, server: socketserver.TCPServer) -> None:
        self.server = server
        self.port: int = server.server_address[1]
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused from now on."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Backend(Listener):
    """One service instance: a real HTTP server answering `<id> <METHOD> <path>` in plain text.

    HTTP/1.0 (a connection per request), so a stopped backend refuses the very next request.
    """

    def __init__(self, instance_id: str, port: int = 0) -> None:
        self.instance_id = instance_id
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                line = f"{owner.instance_id} {self.command} {self.path}"
                owner.requests.append(line)
                body = line.encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(ThreadingHTTPServer(("127.0.0.1", port), Handler))


class HangUp(Listener):
    """An instance that reads each request and closes the connection without a word."""

    def __init__(self) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)

        super().__init__(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler))


class Clock:
    """The gateway's clock, moved by the test (ejections last a while)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Front(LoopThread):
    """A gateway with a registry, served by uvicorn on a free port in its own thread.

    The registry is only touched on the gateway's loop (`run`), as on a node.
    """

    def __init__(self, app: App, registry: Registry, *, zone: str | None, clock: Clock) -> None:
        super().__init__()
        self.registry = registry
        self.gateway = Gateway(
            lambda: app, InMemoryInvoker(), Identity(), registry=registry, zone=zone, clock=clock
        )
        self.server: AsgiServer | None = None

    def __enter__(self) -> Front:
        self.server = AsgiServer(self.gateway.asgi, self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()
        self.call(self.gateway.close, 10)
        self.stop()

    @property
    def base(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def balancer(self) -> Balancer:
        assert self.gateway.http_proxy.balancer is not None
        return self.gateway.http_proxy.balancer


def _private(service_id: str, **parameters: str) -> Integration:
    return Integration(
        IntegrationType.HTTP_PROXY,
        cloud_map_service=service_id,
        payload_format_version="1.0",
        timeout_ms=5000,
        request_parameters=parameters,
    )


def _uri(uri: str) -> Integration:
    return Integration(IntegrationType.HTTP_PROXY, uri=uri, timeout_ms=5000)


def shop_app(catalog: str, empty: str, plain: str) -> App:
    """Three APIs: an HTTP API at `$default`, one with a named stage `test`, a REST API."""
    root = Api(
        api_id="httpshop01",
        name="shop",
        kind=ApiKind.HTTP,
        routes=(
            Route("ANY", "/items/{proxy+}", _private(catalog)),
            Route("ANY", "/empty/{proxy+}", _private(empty)),
            Route("GET", "/byname/{id}", _uri("http://catalog.shop.local/items/{id}")),
        ),
        stages={"$default": Stage("$default")},
    )
    staged = Api(
        api_id="httpshop02",
        name="shop-staged",
        kind=ApiKind.HTTP,
        routes=(
            Route("GET", "/items/{id}", _private(catalog)),
            Route("GET", "/kept/{id}", _private(catalog, **{"overwrite:path": "$request.path"})),
            Route(
                "GET",
                "/moved/{id}",
                _private(catalog, **{"overwrite:path": "/v2/items/${request.path.id}"}),
            ),
        ),
        stages={"test": Stage("test")},
    )
    rest = Api(
        api_id="restshop01",
        name="shop-rest",
        kind=ApiKind.REST,
        routes=(
            Route(
                "ANY", "/catalog/{proxy+}", _uri("http://${stageVariables.catalog}:8080/{proxy}")
            ),
            Route("ANY", "/empty/{proxy+}", _uri("http://empty.shop.local/{proxy}")),
            Route("GET", "/plain", _uri(f"{plain}/plain")),
        ),
        stages={"Prod": Stage("Prod", {"catalog": "catalog.shop.local"})},
    )
    return App.build([], apis=[root, staged, rest])


class Shop:
    """The registry's two services (`catalog`, `empty`), their instances and the gateway."""

    def __init__(self, front: Front, catalog: str, empty: str, clock: Clock) -> None:
        self.front = front
        self.catalog = catalog
        self.empty = empty
        self.clock = clock
        self.backends: dict[str, Backend] = {}

    def start(self, instance_id: str, zone: str | None = None, port: int = 0) -> Backend:
        """Run an instance's server and register it with the catalog service."""
        backend = self.backends[instance_id] = Backend(instance_id, port)
        self.register(instance_id, backend.port, zone)
        return backend

    def register(self, instance_id: str, port: int, zone: str | None = None) -> None:
        registry = self.front.registry
        attributes = {IPV4: "127.0.0.1", PORT: str(port)}
        if zone is not None:
            attributes[ZONE] = zone
        self.front.run(lambda: registry.register_instance(self.catalog, instance_id, attributes))

    def set_health(self, instance_id: str, status: HealthStatus) -> None:
        registry = self.front.registry
        self.front.run(lambda: registry.set_health(self.catalog, instance_id, status))

    def get(self, path: str, method: str = "GET") -> httpx.Response:
        return httpx.request(method, self.front.base + path, timeout=10)

    def bodies(self, path: str, count: int, method: str = "GET") -> list[str]:
        """`count` requests in a row, each of which must succeed: the bodies."""
        out = []
        for _ in range(count):
            resp = self.get(path, method)
            assert resp.status_code == 200, resp.content
            out.append(resp.text)
        return out


@contextlib.contextmanager
def open_shop(zone: str | None = None) -> Iterator[Shop]:
    registry = Registry(Identity())
    catalog = registry.ensure_service("shop.local", "catalog").id
    empty = registry.ensure_service("shop.local", "empty").id
    plain = Backend("plain")
    clock = Clock()
    try:
        with Front(
            shop_app(catalog, empty, f"http://127.0.0.1:{plain.port}"),
            registry,
            zone=zone,
            clock=clock,
        ) as front:
            shop = Shop(front, catalog, empty, clock)
            try:
                yield shop
            finally:
                for backend in shop.backends.values():
                    backend.stop()
    finally:
        plain.stop()
        registry.close()


@pytest.fixture
def shop() -> Iterator[Shop]:
    with open_shop() as opened:
        yield opened


def test_private_integration_balances_over_the_instances(shop: Shop) -> None:
    shop.start("a")
    shop.start("b")
    bodies = shop.bodies("/items/tea/green?size=2", 4)
    assert sorted(bodies) == [
        "a GET /items/tea/green?size=2",
        "a GET /items/tea/green?size=2",
        "b GET /items/tea/green?size=2",
        "b GET /items/tea/green?size=2",
    ]
    resp = shop.get("/items/tea", method="PUT")
    assert resp.status_code == 200
    assert resp.text.endswith(" PUT /items/tea")


def test_uri_naming_a_service_balances_over_its_instances(shop: Shop) -> None:
    shop.start("a")
    shop.start("b")
    # REST: the host comes from a stage variable, and the URI's port is the instance's.
    assert sorted(shop.bodies("/Prod/catalog/items/7?x=1", 2)) == [
        "a GET /items/7?x=1",
        "b GET /items/7?x=1",
    ]
    # HTTP API, a URI without a port.
    assert sorted(shop.bodies("/byname/9", 2)) == ["a GET /items/9", "b GET /items/9"]
    # Other hosts go out as they always did.
    assert shop.bodies("/Prod/plain", 1) == ["plain GET /plain"]


def test_named_stage_private_integration_sends_the_stage(shop: Shop) -> None:
    shop.start("a")
    # AWS includes the stage in the path sent to a private integration...
    assert shop.bodies("/test/items/7?q=x", 1) == ["a GET /test/items/7?q=x"]
    # ...and `overwrite:path` to `$request.path` (the path without the stage) removes it.
    assert shop.bodies("/test/kept/7", 1) == ["a GET /kept/7"]
    assert shop.bodies("/test/moved/7", 1) == ["a GET /v2/items/7"]


def test_the_gateways_zone_is_preferred() -> None:
    with open_shop(zone="us-east-1a") as shop:
        shop.start("far", zone="us-east-1b")
        shop.start("near", zone="us-east-1a")
        assert shop.bodies("/items/x", 4) == ["near GET /items/x"] * 4
        # No instance left in the gateway's zone: the other zones serve.
        shop.set_health("near", HealthStatus.UNHEALTHY)
        assert shop.bodies("/items/x", 3) == ["far GET /items/x"] * 3
        shop.set_health("near", HealthStatus.HEALTHY)
        assert shop.bodies("/items/x", 2) == ["near GET /items/x"] * 2


def test_unhealthy_instances_receive_nothing(shop: Shop) -> None:
    shop.start("up")
    down = shop.start("down")
    shop.start("unknown")
    shop.set_health("up", HealthStatus.HEALTHY)
    shop.set_health("down", HealthStatus.UNHEALTHY)
    bodies = shop.bodies("/items/x", 6)
    assert sorted(bodies) == ["unknown GET /items/x"] * 3 + ["up GET /items/x"] * 3
    assert down.requests == []


def test_a_stopped_instance_is_retried_around_then_ejected(shop: Shop) -> None:
    alive = shop.start("alive")
    dead = shop.start("dead")
    dead.stop()
    # Every GET succeeds: those sent to the stopped instance are retried on the other one.
    assert shop.bodies("/items/x", 8) == ["alive GET /items/x"] * 8
    assert shop.front.run(lambda: shop.front.balancer.ejected(shop.catalog)) == ["dead"]
    # Three connection failures ejected it: back on its port, it still gets nothing...
    revived = shop.start("dead", port=dead.port)
    assert shop.bodies("/items/x", 4) == ["alive GET /items/x"] * 4
    assert revived.requests == []
    # ...until its ejection (10 s the first time) is over.
    shop.clock.now += 11
    assert (
        sorted(shop.bodies("/items/x", 4)) == ["alive GET /items/x"] * 2 + ["dead GET /items/x"] * 2
    )
    assert len(alive.requests) == 14


def test_an_instance_that_hangs_up_is_retried_around(shop: Shop) -> None:
    shop.start("alive")
    rude = HangUp()
    try:
        shop.register("rude", rude.port)
        assert shop.bodies("/items/x", 2) == ["alive GET /items/x"] * 2
        # Not a POST: the instance may have acted on it before hanging up.
        statuses = sorted(shop.get("/items/x", "POST").status_code for _ in range(2))
        assert statuses == [200, 503]
    finally:
        rude.stop()


@pytest.mark.parametrize(
    ("path", "sent", "status", "body"),
    [
        ("/items/x", "/items/x", 503, SERVICE_UNAVAILABLE),
        ("/Prod/catalog/x", "/x", 502, INTERNAL_SERVER_ERROR),
    ],
)
def test_a_post_to_a_stopped_instance_is_not_retried(
    shop: Shop, path: str, sent: str, status: int, body: bytes
) -> None:
    alive = shop.start("alive")
    shop.start("dead").stop()
    # Round robin sends the first request to the first instance, the second to the other.
    first, second = shop.get(path, "POST"), shop.get(path, "POST")
    assert (first.status_code, first.text) == (200, f"alive POST {sent}")
    assert (second.status_code, second.content) == (status, body)
    assert second.headers["content-type"] == "application/json"
    assert alive.requests == [f"alive POST {sent}"]


def test_no_instances_is_503_for_http_apis_and_502_for_rest(shop: Shop) -> None:
    resp = shop.get("/empty/x")
    assert resp.status_code == 503
    assert resp.content == SERVICE_UNAVAILABLE
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["apigw-requestid"]
    resp = shop.get("/Prod/empty/x")
    assert resp.status_code == 502
    assert resp.content == INTERNAL_SERVER_ERROR
    assert resp.headers["x-amzn-errortype"] == "InternalServerErrorException"
    assert resp.headers["x-amzn-requestid"]
    # Registered but unhealthy is no instance either.
    shop.start("sick")
    shop.set_health("sick", HealthStatus.UNHEALTHY)
    resp = shop.get("/items/x")
    assert (resp.status_code, resp.content) == (503, SERVICE_UNAVAILABLE)
