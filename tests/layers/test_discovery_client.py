"""The discovery layer's client against a real Cloud Map API: resolution, zones, failures, the
cache and its revision checks, errors, and the module-level functions."""

from __future__ import annotations

import random
import threading
import time

import fogbank_discovery
import pytest
from fogbank_discovery import (
    DiscoveryClient,
    DiscoveryError,
    Endpoint,
    NamespaceNotFound,
    NoHealthyInstance,
    ServiceNotFound,
)

from fogbank.discovery._records import HealthStatus
from fogbank.model import DnsRecord

from .conftest import NAMESPACE, CloudMapServer, FakeClock


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.instance_id for e in endpoints]


def test_public_names() -> None:
    assert fogbank_discovery.__all__ == sorted(fogbank_discovery.__all__)
    assert fogbank_discovery.__all__ == [
        "DiscoveryClient",
        "DiscoveryError",
        "Endpoint",
        "InstanceUnreachable",
        "NamespaceNotFound",
        "NoHealthyInstance",
        "Response",
        "ServiceNotFound",
        "client",
        "instances",
        "mark_failed",
        "request",
        "resolve",
        "url",
    ]


def test_resolve_gives_the_instance_and_its_attributes(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "catalog-1", 8081, zone="us-east-1a", version="2")
    client = DiscoveryClient(cloudmap.url)

    found = client.resolve("catalog", NAMESPACE)

    assert found == Endpoint("127.0.0.1", 8081, "catalog-1")
    assert found.url == "http://127.0.0.1:8081"
    assert found.zone == "us-east-1a"
    assert dict(found.attributes) == {
        "AWS_INSTANCE_IPV4": "127.0.0.1",
        "AWS_INSTANCE_PORT": "8081",
        "AVAILABILITY_ZONE": "us-east-1a",
        "version": "2",
    }
    assert client.url("catalog", NAMESPACE, "items/1") == "http://127.0.0.1:8081/items/1"
    assert client.url("catalog", NAMESPACE) == "http://127.0.0.1:8081/"


def test_ipv6_instance_url() -> None:
    endpoint = Endpoint("::1", 8080, "v6", {"AWS_INSTANCE_IPV6": "::1"})
    assert endpoint.url == "http://[::1]:8080"


def test_query_parameters_filter_instances(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "blue-1", 8081, color="blue")
    cloudmap.register("catalog", "green-1", 8082, color="green")
    client = DiscoveryClient(cloudmap.url)

    assert ids(client.instances("catalog", NAMESPACE, query={"color": "green"})) == ["green-1"]
    assert client.resolve("catalog", NAMESPACE, query={"color": "blue"}).instance_id == "blue-1"
    assert sorted(ids(client.instances("catalog", NAMESPACE))) == ["blue-1", "green-1"]


def test_the_callers_zone_is_preferred(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "b-1", 8082, zone="us-east-1b")
    cloudmap.register("catalog", "a-1", 8081, zone="us-east-1a")
    cloudmap.register("catalog", "b-2", 8083, zone="us-east-1b")
    in_a = DiscoveryClient(cloudmap.url, zone="us-east-1a", rng=random.Random(1))

    assert {in_a.resolve("catalog", NAMESPACE).instance_id for _ in range(50)} == {"a-1"}
    assert ids(in_a.instances("catalog", NAMESPACE))[0] == "a-1"

    # No instance in the caller's zone: any instance, at random.
    in_c = DiscoveryClient(cloudmap.url, zone="us-east-1c", rng=random.Random(1))
    seen = {in_c.resolve("catalog", NAMESPACE).instance_id for _ in range(200)}
    assert seen == {"a-1", "b-1", "b-2"}


def test_mark_failed_sets_an_instance_aside_for_a_while(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    cloudmap.register("catalog", "c-2", 8082)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, failure_seconds=10, rng=random.Random(2))
    first = next(e for e in client.instances("catalog", NAMESPACE) if e.instance_id == "c-1")

    client.mark_failed(first)
    assert {client.resolve("catalog", NAMESPACE).instance_id for _ in range(50)} == {"c-2"}

    clock.advance(10)
    seen = {client.resolve("catalog", NAMESPACE).instance_id for _ in range(200)}
    assert seen == {"c-1", "c-2"}


def test_every_instance_marked_failed_still_resolves(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    client = DiscoveryClient(cloudmap.url)
    only = client.resolve("catalog", NAMESPACE)

    client.mark_failed(only)

    assert client.resolve("catalog", NAMESPACE) == only


def test_unhealthy_instances_are_used_when_none_is_healthy(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    cloudmap.register("catalog", "c-2", 8082)
    service_id = cloudmap.service("catalog").id
    for instance_id in ("c-1", "c-2"):
        cloudmap.run(
            lambda i=instance_id: cloudmap.registry.set_health(  # type: ignore[misc]
                service_id, i, HealthStatus.UNHEALTHY
            )
        )
    assert sorted(ids(DiscoveryClient(cloudmap.url).instances("catalog", NAMESPACE))) == [
        "c-1",
        "c-2",
    ]

    cloudmap.run(lambda: cloudmap.registry.set_health(service_id, "c-2", HealthStatus.HEALTHY))
    client = DiscoveryClient(cloudmap.url, rng=random.Random(3))
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-2"]
    assert {client.resolve("catalog", NAMESPACE).instance_id for _ in range(20)} == {"c-2"}


def test_cache_then_revision_then_fetch(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, cache_seconds=5, refresh_seconds=30)
    cloudmap.recorder.take()

    assert ids(client.instances("catalog", NAMESPACE)) == ["c-1"]
    assert cloudmap.recorder.take() == ["DiscoverInstances"]

    # Within the cache time: no call at all.
    client.resolve("catalog", NAMESPACE)
    client.url("catalog", NAMESPACE)
    assert cloudmap.recorder.take() == []

    # Past it: one revision check, and the unchanged revision keeps the answer.
    clock.advance(5)
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-1"]
    assert cloudmap.recorder.take() == ["DiscoverInstancesRevision"]

    # A registration is not seen until the cache time has passed again, then it is fetched.
    cloudmap.register("catalog", "c-2", 8082)
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-1"]
    clock.advance(5)
    assert sorted(ids(client.instances("catalog", NAMESPACE))) == ["c-1", "c-2"]
    assert cloudmap.recorder.take() == ["DiscoverInstancesRevision", "DiscoverInstances"]

    # Deregistration moves the revision too.
    cloudmap.deregister("catalog", "c-1")
    clock.advance(5)
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-2"]
    assert cloudmap.recorder.take() == ["DiscoverInstancesRevision", "DiscoverInstances"]


def test_health_changes_are_fetched_after_refresh_seconds(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    cloudmap.register("catalog", "c-2", 8082)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, cache_seconds=5, refresh_seconds=30)
    assert sorted(ids(client.instances("catalog", NAMESPACE))) == ["c-1", "c-2"]
    service_id = cloudmap.service("catalog").id
    cloudmap.run(lambda: cloudmap.registry.set_health(service_id, "c-1", HealthStatus.UNHEALTHY))
    cloudmap.recorder.take()

    # Health does not move Cloud Map's revision, so the revision check keeps the old answer...
    clock.advance(25)
    assert sorted(ids(client.instances("catalog", NAMESPACE))) == ["c-1", "c-2"]
    assert cloudmap.recorder.take() == ["DiscoverInstancesRevision"]

    # ...until the answer is refresh_seconds old: then it is fetched whatever the revision.
    clock.advance(5)
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-2"]
    assert cloudmap.recorder.take() == ["DiscoverInstances"]


def test_mark_failed_rechecks_the_revision_at_once(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, cache_seconds=5)
    old = client.resolve("catalog", NAMESPACE)
    # The instance is replaced (as the supervisor does) and the caller saw the old one fail.
    cloudmap.register("catalog", "c-2", 8082)
    cloudmap.deregister("catalog", "c-1")
    cloudmap.recorder.take()

    client.mark_failed(old)

    assert client.resolve("catalog", NAMESPACE).instance_id == "c-2"
    assert cloudmap.recorder.take() == ["DiscoverInstancesRevision", "DiscoverInstances"]


def test_a_new_instance_is_seen_once_the_cache_expires(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    client = DiscoveryClient(cloudmap.url, cache_seconds=0.05)
    assert ids(client.instances("catalog", NAMESPACE)) == ["c-1"]

    cloudmap.register("catalog", "c-2", 8082)

    deadline = time.monotonic() + 30
    while sorted(ids(client.instances("catalog", NAMESPACE))) != ["c-1", "c-2"]:
        assert time.monotonic() < deadline, "the new instance was never discovered"
        time.sleep(0.01)


def test_a_cached_answer_outlives_cloud_map(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, cache_seconds=5)
    known = client.resolve("catalog", NAMESPACE)
    url = cloudmap.url
    cloudmap.stop()
    clock.advance(60)

    assert client.resolve("catalog", NAMESPACE) == known

    with pytest.raises(DiscoveryError) as caught:
        DiscoveryClient(url).resolve("catalog", NAMESPACE)
    assert type(caught.value) is DiscoveryError
    assert caught.value.message.startswith(
        f"cannot resolve service 'catalog' in namespace 'shop.local': "
        f"Cloud Map at {url} did not answer: "
    )


def test_unknown_service(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    client = DiscoveryClient(cloudmap.url)

    with pytest.raises(ServiceNotFound) as caught:
        client.resolve("orders", NAMESPACE)

    assert type(caught.value) is ServiceNotFound
    assert str(caught.value) == "service 'orders' not found in namespace 'shop.local'"
    assert (caught.value.service, caught.value.namespace) == ("orders", NAMESPACE)
    assert caught.value.code == "ServiceNotFound"


def test_unknown_namespace(cloudmap: CloudMapServer) -> None:
    client = DiscoveryClient(cloudmap.url)

    with pytest.raises(ServiceNotFound) as caught:
        client.url("catalog", "nowhere.local")

    assert type(caught.value) is NamespaceNotFound
    assert str(caught.value) == "namespace 'nowhere.local' not found (looking up service 'catalog')"


def test_a_removed_service_is_not_served_from_the_cache(cloudmap: CloudMapServer) -> None:
    cloudmap.register("catalog", "c-1", 8081)
    clock = FakeClock()
    client = DiscoveryClient(cloudmap.url, clock=clock, cache_seconds=5)
    client.resolve("catalog", NAMESPACE)
    cloudmap.deregister("catalog", "c-1")
    service_id = cloudmap.service("catalog").id
    cloudmap.run(lambda: cloudmap.registry.delete_service(service_id))
    clock.advance(5)

    with pytest.raises(ServiceNotFound):
        client.resolve("catalog", NAMESPACE)


def test_a_service_without_instances(cloudmap: CloudMapServer) -> None:
    cloudmap.service("catalog")
    client = DiscoveryClient(cloudmap.url)

    with pytest.raises(NoHealthyInstance) as caught:
        client.resolve("catalog", NAMESPACE)

    assert str(caught.value) == (
        "no instance to call for service 'catalog' in namespace 'shop.local': "
        "it has no registered instance"
    )
    assert client.instances("catalog", NAMESPACE) == []


def test_instances_without_an_address_are_skipped(cloudmap: CloudMapServer) -> None:
    # A service publishing A records only accepts an instance without a port.
    service_id = cloudmap.service("catalog").id
    cloudmap.run(lambda: cloudmap.registry.update_service(service_id, dns_records=[DnsRecord("A")]))
    cloudmap.register("catalog", "no-port", None)
    client = DiscoveryClient(cloudmap.url)

    with pytest.raises(NoHealthyInstance) as caught:
        client.resolve("catalog", NAMESPACE)

    assert str(caught.value) == (
        "no instance to call for service 'catalog' in namespace 'shop.local': none of its 1 "
        "instance(s) has an address (AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6, and "
        "AWS_INSTANCE_PORT)"
    )


def test_endpoint_comes_from_the_environment(
    cloudmap: CloudMapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudmap.register("catalog", "a-1", 8081, zone="us-east-1a")
    cloudmap.register("catalog", "b-1", 8082, zone="us-east-1b")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICEDISCOVERY", cloudmap.url)
    monkeypatch.setenv("AVAILABILITY_ZONE", "us-east-1b")

    assert fogbank_discovery.resolve("catalog", NAMESPACE).instance_id == "b-1"
    assert ids(fogbank_discovery.instances("catalog", NAMESPACE)) == ["b-1", "a-1"]
    assert fogbank_discovery.url("catalog", NAMESPACE, "/x") == "http://127.0.0.1:8082/x"
    shared = fogbank_discovery.client()
    assert shared is fogbank_discovery.client()
    assert (shared.endpoint, shared.zone) == (cloudmap.url, "us-east-1b")

    # An explicit endpoint wins over the environment.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICEDISCOVERY", "http://127.0.0.1:9")
    assert fogbank_discovery.client(cloudmap.url).endpoint == cloudmap.url


def test_no_endpoint_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SERVICEDISCOVERY", raising=False)

    with pytest.raises(DiscoveryError) as caught:
        fogbank_discovery.resolve("catalog", NAMESPACE)

    assert str(caught.value) == (
        "no discovery endpoint: set AWS_ENDPOINT_URL_SERVICEDISCOVERY or pass endpoint="
    )
    with pytest.raises(DiscoveryError) as bad:
        DiscoveryClient("127.0.0.1:3001")
    assert str(bad.value) == ("the discovery endpoint must be an http(s) URL, not '127.0.0.1:3001'")


def test_concurrent_callers_share_one_client(cloudmap: CloudMapServer) -> None:
    for n in range(4):
        cloudmap.register("catalog", f"c-{n}", 8080 + n)
    client = DiscoveryClient(cloudmap.url, cache_seconds=0.001, failure_seconds=0.001)
    seen: set[str] = set()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(30):
                found = client.resolve("catalog", NAMESPACE)
                seen.add(found.instance_id)
                client.mark_failed(found)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert seen <= {"c-0", "c-1", "c-2", "c-3"}
    assert seen
