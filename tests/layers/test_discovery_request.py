"""`request`: real HTTP instances, and the retry on another instance after a connection failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fogbank_discovery import DiscoveryClient, InstanceUnreachable

from .conftest import NAMESPACE, CloudMapServer, HangUpServer, InstanceServer, closed_port


def doc(body: bytes) -> Any:
    return json.loads(body)


def test_request_reaches_an_instance(
    cloudmap: CloudMapServer, instance_server: Callable[[str], InstanceServer]
) -> None:
    one = instance_server("one")
    cloudmap.register("catalog", "c-1", one.port)
    client = DiscoveryClient(cloudmap.url)

    status, headers, body = client.request("GET", "catalog", NAMESPACE, "/items?page=2")

    assert status == 200
    assert headers["content-type"] == "application/json"
    assert doc(body) == {
        "name": "one",
        "method": "GET",
        "path": "/items?page=2",
        "body": "",
        "type": None,
    }


def test_request_sends_bodies_and_returns_error_statuses(
    cloudmap: CloudMapServer, instance_server: Callable[[str], InstanceServer]
) -> None:
    one = instance_server("one")
    cloudmap.register("catalog", "c-1", one.port)
    client = DiscoveryClient(cloudmap.url)

    sent = client.request(
        "post",
        "catalog",
        NAMESPACE,
        "orders",
        body='{"id": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert sent.status == 200
    assert doc(sent.body) == {
        "name": "one",
        "method": "POST",
        "path": "/orders",
        "body": '{"id": 1}',
        "type": "application/json",
    }
    raw = client.request("PUT", "catalog", NAMESPACE, "/blob", body=b"\x00\x01")
    assert doc(raw.body)["type"] == "application/octet-stream"
    text = client.request("PUT", "catalog", NAMESPACE, "/note", body="hello")
    assert doc(text.body)["type"] == "text/plain; charset=utf-8"

    # 4xx and 5xx are answers, not exceptions.
    missing = client.request("GET", "catalog", NAMESPACE, "/status/404")
    assert (missing.status, doc(missing.body)["name"]) == (404, "one")
    broken = client.request("DELETE", "catalog", NAMESPACE, "/status/503")
    assert broken.status == 503


def test_a_refused_connection_is_retried_on_another_instance(
    cloudmap: CloudMapServer, instance_server: Callable[[str], InstanceServer]
) -> None:
    live = instance_server("live")
    dead_port = closed_port()
    # The dead instance is the only one in the caller's zone, so it is always tried first.
    cloudmap.register("catalog", "dead", dead_port, zone="us-east-1a")
    cloudmap.register("catalog", "live", live.port, zone="us-east-1b")
    client = DiscoveryClient(cloudmap.url, zone="us-east-1a")
    assert client.resolve("catalog", NAMESPACE).instance_id == "dead"

    status, _, body = client.request("GET", "catalog", NAMESPACE, "/items")

    assert (status, doc(body)["name"]) == (200, "live")
    # The dead instance is set aside: the next calls go straight to the live one.
    assert client.resolve("catalog", NAMESPACE).instance_id == "live"
    client.request("GET", "catalog", NAMESPACE, "/again")
    assert live.requests == ["GET /items", "GET /again"]


def test_a_refused_post_is_retried_too(
    cloudmap: CloudMapServer, instance_server: Callable[[str], InstanceServer]
) -> None:
    live = instance_server("live")
    cloudmap.register("catalog", "dead", closed_port(), zone="us-east-1a")
    cloudmap.register("catalog", "live", live.port, zone="us-east-1b")
    client = DiscoveryClient(cloudmap.url, zone="us-east-1a")

    status, _, body = client.request("POST", "catalog", NAMESPACE, "/orders", body="x")

    assert (status, doc(body)["body"]) == (200, "x")
    assert live.requests == ["POST /orders"]


def test_a_hang_up_is_retried_for_idempotent_methods_only(
    cloudmap: CloudMapServer,
    instance_server: Callable[[str], InstanceServer],
    hang_up_server: HangUpServer,
) -> None:
    live = instance_server("live")
    cloudmap.register("catalog", "crashing", hang_up_server.port, zone="us-east-1a")
    cloudmap.register("catalog", "live", live.port, zone="us-east-1b")

    getter = DiscoveryClient(cloudmap.url, zone="us-east-1a")
    status, _, body = getter.request("GET", "catalog", NAMESPACE, "/items")
    assert (status, doc(body)["name"]) == (200, "live")
    assert hang_up_server.accepted == 1

    # The POST may have been acted on before the hang-up: it is not sent again.
    poster = DiscoveryClient(cloudmap.url, zone="us-east-1a")
    with pytest.raises(InstanceUnreachable) as caught:
        poster.request("POST", "catalog", NAMESPACE, "/orders", body="x")
    assert hang_up_server.accepted == 2
    assert live.requests == ["GET /items"]
    assert caught.value.message.startswith(
        "POST /orders to service 'catalog' in namespace 'shop.local': cannot connect to "
        f"crashing (http://127.0.0.1:{hang_up_server.port}): "
    )
    assert isinstance(caught.value.__cause__, ConnectionError)
    # ...but the instance is set aside for the next call.
    assert poster.resolve("catalog", NAMESPACE).instance_id == "live"


def test_retry_happens_once(cloudmap: CloudMapServer) -> None:
    first, second = closed_port(), closed_port()
    cloudmap.register("catalog", "d-1", first, zone="us-east-1a")
    cloudmap.register("catalog", "d-2", second, zone="us-east-1b")
    cloudmap.register("catalog", "d-3", closed_port(), zone="us-east-1c")
    client = DiscoveryClient(cloudmap.url, zone="us-east-1a")

    with pytest.raises(InstanceUnreachable) as caught:
        client.request("GET", "catalog", NAMESPACE, "/items")

    message = caught.value.message
    assert message.startswith(
        "GET /items to service 'catalog' in namespace 'shop.local': cannot connect to "
        f"d-1 (http://127.0.0.1:{first}), "
    )
    assert message.count("(http://127.0.0.1:") == 2
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_a_lone_dead_instance(cloudmap: CloudMapServer) -> None:
    port = closed_port()
    cloudmap.register("catalog", "dead", port)
    client = DiscoveryClient(cloudmap.url)

    with pytest.raises(InstanceUnreachable) as caught:
        client.request("GET", "catalog", NAMESPACE, "/")

    assert caught.value.message.startswith(
        "GET / to service 'catalog' in namespace 'shop.local': cannot connect to "
        f"dead (http://127.0.0.1:{port}): "
    )
    assert (caught.value.service, caught.value.namespace) == ("catalog", NAMESPACE)
