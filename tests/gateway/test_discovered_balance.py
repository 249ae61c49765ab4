"""The balancer against a real registry, with a clock the test moves: choice, zones, ejection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fogbank.discovery._records import IPV4, PORT, ZONE, HealthStatus
from fogbank.discovery._registry import Registry
from fogbank.gateway._balance import Balancer, Ejection, Target
from fogbank.model import Identity, NamespaceType


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> Iterator[Registry]:
    registry = Registry(Identity())
    yield registry
    registry.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _catalog(registry: Registry, *instances: str, zones: dict[str, str] | None = None) -> str:
    """The `catalog.shop.local` service with instances listening on ports 9001, 9002, ..."""
    service_id = registry.ensure_service("shop.local", "catalog").id
    for number, instance_id in enumerate(instances, start=1):
        attributes = {IPV4: "127.0.0.1", PORT: str(9000 + number)}
        if zones and instance_id in zones:
            attributes[ZONE] = zones[instance_id]
        registry.register_instance(service_id, instance_id, attributes)
    return service_id


def _ids(balancer: Balancer, service_id: str, count: int) -> list[str]:
    picks = [balancer.choose(service_id) for _ in range(count)]
    return [t.instance_id if t is not None else "-" for t in picks]


def _pick(balancer: Balancer, service_id: str, instance_id: str) -> Target:
    """The target for an instance, found by choosing until round robin reaches it."""
    for _ in range(10):
        target = balancer.choose(service_id)
        if target is not None and target.instance_id == instance_id:
            return target
    raise AssertionError(f"{instance_id} is never chosen")


def test_round_robin_in_registration_order(registry: Registry, clock: Clock) -> None:
    service = _catalog(registry, "a", "b", "c")
    balancer = Balancer(registry, clock=clock)
    assert _ids(balancer, service, 6) == ["a", "b", "c", "a", "b", "c"]
    target = balancer.choose(service)
    assert target is not None
    assert (target.authority, target.zone) == ("127.0.0.1:9001", None)


def test_the_registry_changes_reach_the_balancer(registry: Registry, clock: Clock) -> None:
    balancer = Balancer(registry, clock=clock)
    assert balancer.service_for_host("catalog.shop.local") is None
    service = _catalog(registry, "a")
    assert balancer.service_for_host("catalog.shop.local") == service
    assert balancer.service_for_host("CATALOG.shop.local") == service
    assert balancer.service_for_host("example.com") is None
    assert _ids(balancer, service, 2) == ["a", "a"]
    registry.register_instance(service, "b", {IPV4: "127.0.0.2", PORT: "80"})
    assert sorted(_ids(balancer, service, 2)) == ["a", "b"]
    registry.set_health(service, "a", HealthStatus.UNHEALTHY)
    assert _ids(balancer, service, 2) == ["b", "b"]
    registry.deregister_instance(service, "b")
    assert _ids(balancer, service, 1) == ["-"]
    balancer.close()
    registry.set_health(service, "a", HealthStatus.HEALTHY)
    assert _ids(balancer, service, 1) == ["-"]  # no longer watching


def test_unknown_services_and_instances_without_an_address(
    registry: Registry, clock: Clock
) -> None:
    balancer = Balancer(registry, clock=clock)
    assert balancer.choose("srv-doesnotexist0000") is None
    operation = registry.create_namespace("api", NamespaceType.HTTP)
    service = registry.create_service("orders", operation.targets["NAMESPACE"]).id
    registry.register_instance(service, "named", {"color": "red"})
    registry.register_instance(service, "v6", {"AWS_INSTANCE_IPV6": "::1", PORT: "81"})
    target = balancer.choose(service)
    assert target is not None
    assert (target.instance_id, target.authority) == ("v6", "[::1]:81")


def test_the_gateways_zone_first_then_every_zone(registry: Registry, clock: Clock) -> None:
    zones = {"a": "z2", "b": "z1", "c": "z1"}
    service = _catalog(registry, "a", "b", "c", zones=zones)
    balancer = Balancer(registry, zone="z1", clock=clock)
    assert _ids(balancer, service, 4) == ["b", "c", "b", "c"]
    # Ejected instances do not count as the zone's: with both out, the other zone serves.
    for instance_id in ("b", "c"):
        target = _pick(balancer, service, instance_id)
        for _ in range(3):
            balancer.failed(target)
    assert balancer.ejected(service) == ["b", "c"]
    assert _ids(balancer, service, 2) == ["a", "a"]
    assert _ids(Balancer(registry, zone="z9", clock=clock), service, 3) == ["a", "b", "c"]


def test_consecutive_failures_eject_and_a_success_resets(registry: Registry, clock: Clock) -> None:
    service = _catalog(registry, "a", "b")
    balancer = Balancer(registry, clock=clock)
    a = _pick(balancer, service, "a")
    balancer.failed(a)
    balancer.failed(a)
    balancer.succeeded(a)
    balancer.failed(a)
    balancer.failed(a)
    assert balancer.ejected(service) == []
    balancer.failed(a)
    assert balancer.ejected(service) == ["a"]
    assert _ids(balancer, service, 3) == ["b", "b", "b"]
    clock.now += 10
    assert balancer.ejected(service) == []
    assert sorted(_ids(balancer, service, 2)) == ["a", "b"]


def test_the_last_instance_in_rotation_is_never_ejected(registry: Registry, clock: Clock) -> None:
    service = _catalog(registry, "a", "b")
    balancer = Balancer(registry, clock=clock)
    a, b = _pick(balancer, service, "a"), _pick(balancer, service, "b")
    for _ in range(3):
        balancer.failed(a)
    for _ in range(10):
        balancer.failed(b)
    assert balancer.ejected(service) == ["a"]
    assert _ids(balancer, service, 2) == ["b", "b"]
    # Once `a` is back, `b`'s next failure (its twelfth in a row) ejects it.
    clock.now += 10
    balancer.failed(b)
    assert balancer.ejected(service) == ["b"]


def test_ejections_grow_capped_and_earned_back(registry: Registry, clock: Clock) -> None:
    service = _catalog(registry, "a", "b")
    ejection = Ejection(consecutive_failures=1, base_ejection_s=10.0, max_ejection_s=25.0)
    balancer = Balancer(registry, clock=clock, ejection=ejection)
    a = _pick(balancer, service, "a")
    lengths = []
    for _ in range(4):
        start = clock.now
        balancer.failed(a)
        lengths.append(a.ejected_until - start)
        clock.now = a.ejected_until  # fails again as soon as it is back
    assert lengths == [10.0, 20.0, 25.0, 25.0]
    # Behaving for three base periods earns three ejections back: 4 - 3 + 1 = 2.
    clock.now += 30
    start = clock.now
    balancer.failed(a)
    assert a.ejected_until - start == 20.0


def test_a_retry_avoids_the_failed_instance(registry: Registry, clock: Clock) -> None:
    service = _catalog(registry, "a", "b", "c")
    balancer = Balancer(registry, clock=clock)
    a = _pick(balancer, service, "a")
    assert {_retry(balancer, service, a) for _ in range(4)} == {"b", "c"}
    # The others ejected: a suspect instance beats the one that has just failed.
    for instance_id in ("b", "c"):
        target = _pick(balancer, service, instance_id)
        for _ in range(3):
            balancer.failed(target)
    assert balancer.ejected(service) == ["b", "c"]
    assert {_retry(balancer, service, a) for _ in range(4)} == {"b", "c"}
    # Alone, the failed instance is all there is.
    lone = Registry(Identity())
    solo_service = _catalog(lone, "solo")
    solo_balancer = Balancer(lone, clock=clock)
    solo = _pick(solo_balancer, solo_service, "solo")
    assert _retry(solo_balancer, solo_service, solo) == "solo"
    lone.close()


def _retry(balancer: Balancer, service_id: str, failed: Target) -> str:
    target = balancer.choose(service_id, avoid=failed)
    assert target is not None
    return target.instance_id
