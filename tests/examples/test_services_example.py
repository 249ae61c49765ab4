"""The services example (`examples/services`), served by a real node: a catalog service run by
uvicorn as two supervised instances, an orders function that finds it through the discovery
layer, an HTTP API private integration and a REST `http_proxy` to `catalog.shop.local`.

These are issue 5's acceptance tests: every way of reaching the catalog (the gateway's two
integration forms, a function through the layer, boto3's `servicediscovery`, DNS through
dnspython), and `kill -9` of an instance under load with the gateway's failed requests counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import httpx
import pytest

from fogbank.config import NodeConfig
from fogbank.discovery import Registry
from fogbank.model import load_template
from fogbank.services import Supervisor

from ..conftest import NodeThread, cloud_map_client, wait_until

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "services"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeThread]:
    root = tmp_path_factory.mktemp("services-example")
    project = root / "app"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".fogbank", "__pycache__"))
    config = NodeConfig(port=0, control_port=0, dns_port=0, state_dir=root / "state")
    node = NodeThread(config, load_template(project / "template.yaml")).start()
    try:
        wait_until(lambda: len(_healthy(node)) == 2, "two healthy catalog instances")
        yield node
    finally:
        node.stop()


def _registry(node: NodeThread) -> Registry:
    assert node.node is not None
    return node.node.registry


def _supervisor(node: NodeThread) -> Supervisor:
    assert node.node is not None
    return node.node.supervisor


def _catalog_id(node: NodeThread) -> str:
    service = _registry(node).find_service("shop.local", "catalog")
    assert service is not None
    return service.id


def _healthy(node: NodeThread) -> list[str]:
    return [i.id for i in _registry(node).healthy(_catalog_id(node))]


def _data_url(node: NodeThread) -> str:
    assert node.node is not None
    return node.node.url


def _rest_api_id(node: NodeThread) -> str:
    assert node.node is not None
    return next(a.api_id for a in node.node.app.apis.values() if a.name == "CatalogRestApi")


def test_the_http_api_private_integration_reaches_both_instances(shop: NodeThread) -> None:
    served = set()
    with httpx.Client(base_url=_data_url(shop)) as client:
        for _ in range(6):
            resp = client.get("/items/1")
            assert resp.status_code == 200
            body = resp.json()
            assert {k: body[k] for k in ("id", "name", "price", "zone")} == {
                "id": "1",
                "name": "Espresso cup",
                "price": 9.5,
                "zone": "us-east-1a",
            }
            assert resp.headers["x-instance"] == body["servedBy"]
            served.add(body["servedBy"])
        assert served == set(_healthy(shop))
        listing = client.get("/items")
        assert listing.status_code == 200
        assert [item["id"] for item in listing.json()["items"]] == ["1", "2", "3"]
        missing = client.get("/items/99")
        assert missing.status_code == 404
        assert missing.json()["message"] == "no such item: /items/99"


def test_a_rest_http_proxy_names_the_service_by_dns_name(shop: NodeThread) -> None:
    resp = httpx.get(f"{_data_url(shop)}/prod/items/2")
    assert resp.status_code == 200
    assert resp.json()["name"] == "Milk jug"
    assert resp.json()["servedBy"] in _healthy(shop)
    assert _rest_api_id(shop)  # the REST API is the template's


def test_the_orders_function_calls_the_catalog_through_the_layer(shop: NodeThread) -> None:
    resp = httpx.post(f"{_data_url(shop)}/orders", json={"items": ["1", "3"]})
    assert resp.status_code == 201
    order = resp.json()
    assert [(line["id"], line["price"]) for line in order["lines"]] == [("1", 9.5), ("3", 21.0)]
    assert order["total"] == 30.5
    assert {line["servedBy"] for line in order["lines"]} <= set(_healthy(shop))
    bad = httpx.post(f"{_data_url(shop)}/orders", json={"items": ["42"]})
    assert bad.status_code == 400
    assert bad.json() == {"message": "unknown item 42"}


def test_boto3_discovers_the_instances(shop: NodeThread) -> None:
    client = cloud_map_client(shop.url)
    found = client.discover_instances(
        NamespaceName="shop.local", ServiceName="catalog", HealthStatus="HEALTHY"
    )
    assert sorted(i["InstanceId"] for i in found["Instances"]) == sorted(_healthy(shop))
    for instance in found["Instances"]:
        assert instance["Attributes"]["AWS_INSTANCE_IPV4"] == "127.0.0.1"
        assert instance["Attributes"]["AVAILABILITY_ZONE"] == "us-east-1a"
        assert instance["Attributes"]["ECS_SERVICE_NAME"] == "catalog"
        assert instance["HealthStatus"] == "HEALTHY"


def test_dns_answers_a_and_srv(shop: NodeThread) -> None:
    assert shop.node is not None
    assert shop.node.dns is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = shop.node.dns.port
    srv = resolver.resolve("catalog.shop.local", "SRV")
    instances = {i.id: i for i in _registry(shop).healthy(_catalog_id(shop))}
    assert srv.rrset is not None
    assert srv.rrset.ttl == 10
    assert sorted(r.port for r in srv) == sorted(
        int(i.attributes["AWS_INSTANCE_PORT"]) for i in instances.values()
    )
    assert {str(r.target) for r in srv} == {f"{i}.catalog.shop.local." for i in instances}
    # Both instances listen on 127.0.0.1: one address, as a resolver merges equal records.
    a = resolver.resolve("catalog.shop.local", "A")
    assert {r.address for r in a} == {"127.0.0.1"}
    assert a.rrset is not None
    assert a.rrset.ttl == 10


def test_kill_9_under_load_fails_no_idempotent_get(shop: NodeThread) -> None:
    """The acceptance figure: the gateway's failed GETs while an instance is killed and
    replaced (target: zero, thanks to the retry on another instance and ejection)."""
    before = set(_healthy(shop))
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=_data_url(shop), timeout=10) as client:
            while not stop.is_set():
                statuses.append(client.get("/items/2").status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(statuses) > 50, "load to start")
        victim = _supervisor(shop).instance_pids("catalog")[0]
        sent_before_kill = len(statuses)
        os.kill(victim, signal.SIGKILL)
        # Replaced: two healthy instances again, one of them new.
        wait_until(
            lambda: len(_healthy(shop)) == 2 and set(_healthy(shop)) != before,
            "the killed instance's replacement to turn healthy",
        )
        replaced_after = len(statuses)
        wait_until(lambda: len(statuses) > replaced_after + 50, "load after the replacement")
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    failed = [s for s in statuses if s != 200]
    print(
        f"kill -9 under load: {len(statuses)} GETs, {len(statuses) - sent_before_kill} after"
        f" the kill, {len(failed)} failed"
    )
    assert failed == []
    assert victim not in _supervisor(shop).instance_pids("catalog")
    status = _supervisor(shop).service_status("catalog")
    assert status is not None
    assert status.restarts >= 1


def test_the_service_log_holds_every_instance(shop: NodeThread) -> None:
    """`fogbank logs catalog` reads this file: the supervisor's events, tagged lines."""
    assert shop.node is not None
    log = shop.node.logs.path("catalog")
    healthy = _healthy(shop)

    def logged() -> bool:
        text = log.read_text() if log.exists() else ""
        return all(f"[fogbank] instance {i} is HEALTHY" in text for i in healthy)

    wait_until(logged, "the instances' events in the service log")
