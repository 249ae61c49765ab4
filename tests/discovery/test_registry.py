"""The registry in memory: registration, health, discovery, watchers, errors."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import pytest

from fogbank._errors import TemplateError
from fogbank.discovery import (
    CloudMapError,
    HealthFilter,
    HealthStatus,
    OperationStatus,
    Owner,
    Registry,
)
from fogbank.model import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    DnsRecord,
    HealthCheckConfig,
    Identity,
    NamespaceSpec,
    NamespaceType,
    discovery_id,
)

SHOP = NamespaceSpec("Shop", "shop.local", NamespaceType.DNS_PRIVATE)
WEB = NamespaceSpec("Web", "web", NamespaceType.HTTP)
ORDERS = DiscoveryServiceSpec(
    "Orders",
    "orders",
    "Shop",
    dns_records=(DnsRecord("A", 30), DnsRecord("SRV", 20)),
    custom_health_failure_threshold=1,
)
PLAIN = DiscoveryServiceSpec("Plain", "plain", "Web")
PROBED = DiscoveryServiceSpec(
    "Probed", "probed", "Web", health_check=HealthCheckConfig("HTTP", "/health", 2)
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> Registry:
    registry = Registry(Identity(region="eu-west-1", account_id="123456789012"), clock=Clock())
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED])
    return registry


def addr(n: int, port: int = 8080) -> dict[str, str]:
    return {"AWS_INSTANCE_IPV4": f"10.0.0.{n}", "AWS_INSTANCE_PORT": str(port)}


def code_of(exc: pytest.ExceptionInfo[CloudMapError]) -> tuple[str, int]:
    return exc.value.code, exc.value.status


def test_template_resources_have_stable_ids_arns_and_types(registry: Registry) -> None:
    namespace = registry.get_namespace(SHOP.namespace_id)
    assert namespace.id == discovery_id("ns", "Shop")
    assert namespace.arn == (
        f"arn:aws:servicediscovery:eu-west-1:123456789012:namespace/{namespace.id}"
    )
    assert (namespace.name, namespace.type, namespace.from_template) == (
        "shop.local",
        NamespaceType.DNS_PRIVATE,
        True,
    )
    orders = registry.get_service(ORDERS.service_id)
    assert orders.arn.endswith(f":service/{ORDERS.service_id}")
    assert (orders.type, orders.namespace_id) == ("DNS_HTTP", SHOP.namespace_id)
    assert registry.get_service(PLAIN.service_id).type == "HTTP"
    assert registry.resolve_name("ORDERS.Shop.Local.") == orders
    assert registry.resolve_name("orders.shop") is None
    assert registry.find_service("shop.local", "orders") == orders
    assert registry.find_service("shop.local", "missing") is None


def test_register_is_an_upsert_with_a_finished_operation(registry: Registry) -> None:
    operation = registry.register_instance(
        ORDERS.service_id, "i-1", addr(1), creator_request_id="req-1"
    )
    assert operation.status is OperationStatus.SUCCESS
    assert operation.type == "REGISTER_INSTANCE"
    assert operation.targets == {"INSTANCE": "i-1", "SERVICE": ORDERS.service_id}
    assert registry.operations.get(operation.id) == operation
    registry.register_instance(ORDERS.service_id, "i-2", addr(2))
    registry.set_health(ORDERS.service_id, "i-1", HealthStatus.UNHEALTHY)
    registry.register_instance(ORDERS.service_id, "i-1", {**addr(9), "color": "blue"})
    first, second = registry.instances(ORDERS.service_id)
    assert (first.id, second.id) == ("i-1", "i-2")  # the upsert keeps its place
    assert first.attributes == {**addr(9), "color": "blue"}
    assert first.health is HealthStatus.UNHEALTHY  # and its health
    assert first.creator_request_id == "req-1"
    assert first.address == ("10.0.0.9", 8080)


def test_revision_moves_on_registration_changes_only(registry: Registry) -> None:
    service_id = ORDERS.service_id
    assert registry.revision(service_id) == 0
    registry.register_instance(service_id, "i-1", addr(1))
    registry.register_instance(service_id, "i-2", addr(2))
    assert registry.revision(service_id) == 2
    registry.register_instance(service_id, "i-1", addr(1))  # same attributes: no change
    registry.set_health(service_id, "i-1", HealthStatus.UNHEALTHY)
    registry.set_health(service_id, "i-1", HealthStatus.HEALTHY)
    assert registry.revision(service_id) == 2
    registry.register_instance(service_id, "i-1", addr(1, port=9090))
    assert registry.revision(service_id) == 3
    operation = registry.deregister_instance(service_id, "i-2")
    assert (operation.type, operation.status) == ("DEREGISTER_INSTANCE", OperationStatus.SUCCESS)
    assert registry.revision(service_id) == 4
    assert registry.discover("shop.local", "orders")[1] == 4
    assert registry.discover_revision("SHOP.local", "orders") == 4


def test_initial_health_follows_the_services_health_config(registry: Registry) -> None:
    registry.register_instance(ORDERS.service_id, "custom", addr(1))
    registry.register_instance(
        ORDERS.service_id, "starts-down", {**addr(2), "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"}
    )
    registry.register_instance(PLAIN.service_id, "none", {})
    registry.register_instance(PROBED.service_id, "probed", addr(3))
    health = {
        i.id: i.health
        for sid in (ORDERS.service_id, PLAIN.service_id, PROBED.service_id)
        for i in registry.instances(sid)
    }
    assert health == {
        "custom": HealthStatus.HEALTHY,
        "starts-down": HealthStatus.UNHEALTHY,
        "none": HealthStatus.UNKNOWN,
        "probed": HealthStatus.HEALTHY,
    }
    assert [i.id for i in registry.healthy(ORDERS.service_id)] == ["custom"]
    assert [i.id for i in registry.healthy(PLAIN.service_id)] == ["none"]  # UNKNOWN counts


@pytest.mark.parametrize(
    ("service", "attributes", "message"),
    [
        ("orders", {"AWS_INSTANCE_IPV4": "10.0.0.300", "AWS_INSTANCE_PORT": "80"}, "IPv4"),
        ("orders", {"AWS_INSTANCE_IPV4": "10.0.0.3", "AWS_INSTANCE_PORT": "65536"}, "65535"),
        ("orders", {"AWS_INSTANCE_IPV4": "10.0.0.3", "AWS_INSTANCE_PORT": "8o"}, "65535"),
        ("orders", {"AWS_INSTANCE_PORT": "80"}, "A record"),
        ("orders", {"AWS_INSTANCE_IPV4": "10.0.0.3"}, "SRV record"),
        ("plain", {f"k{n}": "v" for n in range(31)}, "30 custom"),
        ("plain", {"k": " padded"}, "white space"),
        ("plain", {"k" * 256: "v"}, "1-255"),
        ("plain", {"k": "v" * 1025}, "1024"),
        ("plain", {f"k{n}": "v" * 300 for n in range(17)}, "5000"),
        ("plain", {"AWS_INIT_HEALTH_STATUS": "MAYBE"}, "HEALTHY or UNHEALTHY"),
        ("probed", {"AWS_INSTANCE_IPV4": "10.0.0.3"}, "HealthCheckConfig"),
    ],
)
def test_invalid_registrations_are_refused(
    registry: Registry, service: str, attributes: dict[str, str], message: str
) -> None:
    service_id = registry.find_service("web" if service != "orders" else "shop.local", service)
    assert service_id is not None
    with pytest.raises(CloudMapError) as exc:
        registry.register_instance(service_id.id, "i-1", attributes)
    assert code_of(exc) == ("InvalidInput", 400)
    assert message in exc.value.message
    assert registry.instances(service_id.id) == ()
    assert registry.revision(service_id.id) == 0


def test_thirty_custom_attributes_and_aws_ones_are_accepted(registry: Registry) -> None:
    attributes = {f"k{n}": f"v{n}" for n in range(30)} | addr(1) | {"AWS_INSTANCE_IPV6": "::1"}
    registry.register_instance(ORDERS.service_id, "i-1", attributes)
    assert registry.instances(ORDERS.service_id)[0].attributes == attributes


@pytest.mark.parametrize("instance_id", ["", "has space", "x" * 65, "é"])
def test_invalid_instance_ids(registry: Registry, instance_id: str) -> None:
    with pytest.raises(CloudMapError) as exc:
        registry.register_instance(PLAIN.service_id, instance_id, {})
    assert code_of(exc) == ("InvalidInput", 400)


def test_not_found_errors(registry: Registry) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: registry.get_namespace("ns-nope"), "NamespaceNotFound"),
        (lambda: registry.get_service("srv-nope"), "ServiceNotFound"),
        (lambda: registry.instances("srv-nope"), "ServiceNotFound"),
        (lambda: registry.register_instance("srv-nope", "i", {}), "ServiceNotFound"),
        (lambda: registry.deregister_instance(PLAIN.service_id, "i"), "InstanceNotFound"),
        (lambda: registry.get_instance(PLAIN.service_id, "i"), "InstanceNotFound"),
        (
            lambda: registry.set_health(PLAIN.service_id, "i", HealthStatus.HEALTHY),
            "InstanceNotFound",
        ),
        (lambda: registry.operations.get("nope"), "OperationNotFound"),
        (lambda: registry.discover("nowhere", "orders"), "NamespaceNotFound"),
        (lambda: registry.discover("shop.local", "nothing"), "ServiceNotFound"),
    ]
    for call, code in cases:
        with pytest.raises(CloudMapError) as exc:
            call()
        assert code_of(exc) == (code, 404)


def test_custom_health_needs_a_custom_health_config(registry: Registry) -> None:
    registry.register_instance(PLAIN.service_id, "i-1", {})
    with pytest.raises(CloudMapError) as exc:
        registry.set_custom_health(PLAIN.service_id, "i-1", HealthStatus.UNHEALTHY)
    assert code_of(exc) == ("CustomHealthNotFound", 404)
    registry.register_instance(ORDERS.service_id, "i-1", addr(1))
    registry.set_custom_health(ORDERS.service_id, "i-1", HealthStatus.UNHEALTHY)
    assert registry.get_instance(ORDERS.service_id, "i-1").health is HealthStatus.UNHEALTHY


def test_the_api_cannot_touch_supervised_instances(registry: Registry) -> None:
    registry.register_instance(ORDERS.service_id, "s-1", addr(1), owner=Owner.SUPERVISOR)
    with pytest.raises(CloudMapError) as exc:
        registry.register_instance(ORDERS.service_id, "s-1", addr(2))
    assert code_of(exc) == ("ResourceInUse", 409)
    with pytest.raises(CloudMapError) as exc:
        registry.deregister_instance(ORDERS.service_id, "s-1", owner=Owner.API)
    assert code_of(exc) == ("ResourceInUse", 409)
    registry.deregister_instance(ORDERS.service_id, "s-1")  # the supervisor itself may
    assert registry.instances(ORDERS.service_id) == ()


def _five(registry: Registry) -> None:
    for n, (color, health) in enumerate(
        [
            ("red", HealthStatus.HEALTHY),
            ("red", HealthStatus.UNHEALTHY),
            ("blue", HealthStatus.HEALTHY),
            ("blue", HealthStatus.UNHEALTHY),
            ("green", HealthStatus.UNHEALTHY),
        ],
        start=1,
    ):
        registry.register_instance(ORDERS.service_id, f"i-{n}", {**addr(n), "color": color})
        registry.set_health(ORDERS.service_id, f"i-{n}", health)


def ids(registry: Registry, **kwargs: object) -> list[str]:
    found, _ = registry.discover("shop.local", "orders", **kwargs)  # type: ignore[arg-type]
    return sorted(i.id for i in found)


def test_discover_health_filters(registry: Registry) -> None:
    _five(registry)
    assert ids(registry) == ["i-1", "i-2", "i-3", "i-4", "i-5"]
    assert ids(registry, health=HealthFilter.HEALTHY) == ["i-1", "i-3"]
    assert ids(registry, health=HealthFilter.UNHEALTHY) == ["i-2", "i-4", "i-5"]
    assert ids(registry, health=HealthFilter.HEALTHY_OR_ELSE_ALL) == ["i-1", "i-3"]
    for n in (1, 3):
        registry.set_health(ORDERS.service_id, f"i-{n}", HealthStatus.UNHEALTHY)
    assert ids(registry, health=HealthFilter.HEALTHY) == []
    assert ids(registry, health=HealthFilter.HEALTHY_OR_ELSE_ALL) == [  # fails open
        "i-1",
        "i-2",
        "i-3",
        "i-4",
        "i-5",
    ]


def test_discover_query_and_optional_parameters(registry: Registry) -> None:
    _five(registry)
    assert ids(registry, query={"color": "red"}) == ["i-1", "i-2"]
    assert ids(registry, query={"color": "red", "AWS_INSTANCE_IPV4": "10.0.0.2"}) == ["i-2"]
    assert ids(registry, query={"color": "pink"}) == []
    assert ids(registry, query={"color": "red"}, health=HealthFilter.HEALTHY) == ["i-1"]
    # Fail open over what the query kept: green's only instance is unhealthy.
    green = {"query": {"color": "green"}, "health": HealthFilter.HEALTHY_OR_ELSE_ALL}
    assert ids(registry, **green) == ["i-5"]
    # Optional parameters narrow when something matches them, and are ignored otherwise.
    assert ids(registry, optional={"color": "blue"}) == ["i-3", "i-4"]
    assert ids(registry, optional={"color": "pink"}) == ["i-1", "i-2", "i-3", "i-4", "i-5"]
    both = {"query": {"color": "red"}, "optional": {"AWS_INSTANCE_IPV4": "10.0.0.2"}}
    assert ids(registry, **both) == ["i-2"]
    assert ids(registry, query={"color": "red"}, optional={"color": "blue"}) == ["i-1", "i-2"]
    assert ids(registry, optional={"color": "red"}, health=HealthFilter.HEALTHY) == ["i-1"]


def test_discover_shuffles_and_limits(registry: Registry) -> None:
    _five(registry)
    firsts = Counter(registry.discover("shop.local", "orders")[0][0].id for _ in range(50))
    assert len(firsts) > 1  # one id first 50 times in a row: odds 5 * (1/5)^50
    found, _ = registry.discover("shop.local", "orders", max_results=2)
    assert len(found) == 2
    for bad in (0, 1001):
        with pytest.raises(CloudMapError) as exc:
            registry.discover("shop.local", "orders", max_results=bad)
        assert code_of(exc) == ("InvalidInput", 400)
    assert len(registry.discover("shop.local", "orders", max_results=1000)[0]) == 5


def test_reads_return_the_same_tuples_until_a_change(registry: Registry) -> None:
    _five(registry)
    before = registry.healthy(ORDERS.service_id)
    assert registry.healthy(ORDERS.service_id) is before
    registry.set_health(ORDERS.service_id, "i-2", HealthStatus.HEALTHY)
    assert [i.id for i in registry.healthy(ORDERS.service_id)] == ["i-1", "i-2", "i-3"]


def test_watchers_hear_every_instance_change(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    def broken(service_id: str) -> None:
        raise RuntimeError("watcher bug")

    registry.watch(broken)
    unwatch = registry.watch(heard.append)
    service_id = ORDERS.service_id
    with caplog.at_level(logging.ERROR):
        registry.register_instance(service_id, "i-1", addr(1))
        registry.register_instance(service_id, "i-1", addr(1))  # no change: nothing to hear
        registry.set_health(service_id, "i-1", HealthStatus.UNHEALTHY)
        registry.set_health(service_id, "i-1", HealthStatus.UNHEALTHY)
        registry.deregister_instance(service_id, "i-1")
    assert heard == [service_id] * 3
    assert "a registry watcher failed" in caplog.text
    assert registry.instances(service_id) == ()
    unwatch()
    unwatch()
    registry.register_instance(service_id, "i-1", addr(1))
    assert heard == [service_id] * 3


def test_ensure_service_finds_or_creates(registry: Registry) -> None:
    assert registry.ensure_service("shop.local", "orders").id == ORDERS.service_id
    made = registry.ensure_service("Corp.Local", "billing")
    assert registry.ensure_service("corp.local", "billing") == made
    namespace = registry.get_namespace(made.namespace_id)
    assert (namespace.name, namespace.type) == ("Corp.Local", NamespaceType.DNS_PRIVATE)
    assert made.dns_records == (DnsRecord("A", 10), DnsRecord("SRV", 10))
    assert (made.routing_policy, made.custom_health_failure_threshold) == ("MULTIVALUE", 1)
    assert made.type == "DNS_HTTP"
    other = Registry(Identity()).ensure_service("corp.local", "billing")
    assert (other.id, other.namespace_id) == (made.id, made.namespace_id)
    # In an existing HTTP namespace: no DNS records.
    web = registry.ensure_service("web", "sessions")
    assert (web.namespace_id, web.dns_records, web.type) == (WEB.namespace_id, (), "HTTP")
    registry.register_instance(made.id, "s-1", addr(1), owner=Owner.SUPERVISOR)
    registry.set_health(made.id, "s-1", HealthStatus.UNHEALTHY)
    assert registry.healthy(made.id) == ()
    # A template update leaves them alone.
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED])
    assert registry.get_service(web.id) == web


def test_a_template_may_rename_into_a_dropped_resources_name(registry: Registry) -> None:
    renamed = DiscoveryServiceSpec("Renamed", "plain", "Web")
    registry.apply_template([SHOP, WEB], [ORDERS, renamed, PROBED])
    assert registry.find_service("web", "plain") == registry.get_service(renamed.service_id)
    assert [s.id for s in registry.services()] == [
        ORDERS.service_id,
        PROBED.service_id,
        renamed.service_id,
    ]


def test_apply_template_updates_and_removes_unused_resources(registry: Registry) -> None:
    registry.register_instance(PLAIN.service_id, "keep", {})
    heard: list[str] = []
    registry.watch(heard.append)
    longer = DiscoveryServiceSpec(
        "Orders",
        "orders",
        "Shop",
        dns_records=(DnsRecord("A", 60), DnsRecord("SRV", 20)),
        custom_health_failure_threshold=1,
    )
    registry.apply_template([SHOP, WEB], [longer, PLAIN])
    assert registry.get_service(ORDERS.service_id).dns_records[0] == DnsRecord("A", 60)
    with pytest.raises(CloudMapError):
        registry.get_service(PROBED.service_id)  # gone, unused
    assert sorted(heard) == sorted([ORDERS.service_id, PROBED.service_id])
    registry.apply_template([SHOP], [longer])
    assert registry.get_service(PLAIN.service_id).name == "plain"  # kept: it has an instance
    assert registry.get_namespace(WEB.namespace_id).name == "web"  # kept: it has a service
    registry.deregister_instance(PLAIN.service_id, "keep")
    registry.apply_template([SHOP], [longer])
    assert [s.id for s in registry.services()] == [ORDERS.service_id]
    assert [n.id for n in registry.namespaces()] == [SHOP.namespace_id]


def test_apply_template_refuses_invalid_resources_whole() -> None:
    registry = Registry(Identity())
    registry.create_namespace("shop.local", NamespaceType.DNS_PRIVATE)
    with pytest.raises(TemplateError) as exc:
        registry.apply_template([SHOP], [])
    assert str(exc.value).startswith("resource Shop: namespace name shop.local is taken by")
    bad = DiscoveryServiceSpec("Bad", "bad", "Web", dns_records=(DnsRecord("A", 5),))
    with pytest.raises(TemplateError) as exc:
        registry.apply_template([WEB], [bad])
    assert str(exc.value) == "resource Bad: A service in an HTTP namespace cannot have DNS records."
    twin = NamespaceSpec("Twin", "WEB.", NamespaceType.HTTP)
    with pytest.raises(
        TemplateError, match=r"resource Twin: namespace name WEB\. is taken by namespace ns-"
    ):
        registry.apply_template([WEB, twin], [])
    again = DiscoveryServiceSpec("Again", "plain", "Web")
    with pytest.raises(TemplateError, match="resource Again: service name plain is taken in web"):
        registry.apply_template([WEB], [PLAIN, again])
    lost = DiscoveryServiceSpec("Lost", "lost", "Nowhere")
    with pytest.raises(TemplateError, match="resource Lost: namespace Nowhere is not in"):
        registry.apply_template([WEB], [lost])
    assert [n.name for n in registry.namespaces()] == ["shop.local"]


DB = DiscoveryInstanceSpec(
    "Db", "Orders", "db-1", {"AWS_INSTANCE_IPV4": "10.0.0.9", "AWS_INSTANCE_PORT": "5432"}
)
CACHE = DiscoveryInstanceSpec("Cache", "Plain", "cache-1", {"url": "redis://10.0.0.8"})


def test_template_instances_are_registered_and_dropped_with_the_template(
    registry: Registry,
) -> None:
    registry.register_instance(ORDERS.service_id, "api-1", addr(1))
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [DB, CACHE])
    db = registry.get_instance(ORDERS.service_id, "db-1")
    assert dict(db.attributes) == {"AWS_INSTANCE_IPV4": "10.0.0.9", "AWS_INSTANCE_PORT": "5432"}
    assert db.creator_request_id == "fogbank-template:Db"
    assert db.owner is Owner.API
    assert sorted(i.id for i in registry.discover("shop.local", "orders")[0]) == ["api-1", "db-1"]
    revision = registry.revision(ORDERS.service_id)
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [DB, CACHE])
    assert registry.revision(ORDERS.service_id) == revision  # the same again: no change
    moved = DiscoveryInstanceSpec("Db", "Orders", "db-1", addr(99, 5432))
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [moved, CACHE])
    assert registry.get_instance(ORDERS.service_id, "db-1").attributes["AWS_INSTANCE_IPV4"] == (
        "10.0.0.99"
    )
    # Dropped from the template: deregistered; the API's own instance stays.
    registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [CACHE])
    assert [i.id for i in registry.instances(ORDERS.service_id)] == ["api-1"]
    # A service whose only instances were the template's goes with them.
    registry.apply_template([SHOP, WEB], [ORDERS, PROBED], [])
    with pytest.raises(CloudMapError):
        registry.get_service(PLAIN.service_id)


def test_template_instances_are_checked_before_anything_changes(registry: Registry) -> None:
    no_address = DiscoveryInstanceSpec("NoAddress", "Orders", "x-1", {"color": "blue"})
    with pytest.raises(TemplateError) as exc:
        registry.apply_template([SHOP, WEB], [ORDERS, PLAIN], [CACHE, no_address])
    assert str(exc.value).startswith("resource NoAddress: ")
    assert "AWS_INSTANCE_IPV4" in str(exc.value)
    assert registry.get_service(PROBED.service_id).name == "probed"  # not removed
    assert registry.instances(PLAIN.service_id) == ()  # CACHE not registered
    bad_id = DiscoveryInstanceSpec("BadId", "Plain", "no spaces", {})
    with pytest.raises(TemplateError, match="resource BadId: Instance id 'no spaces' must be"):
        registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [bad_id])
    registry.register_instance(PLAIN.service_id, "run-1", {}, owner=Owner.SUPERVISOR)
    taken = DiscoveryInstanceSpec("Taken", "Plain", "run-1", {})
    with pytest.raises(TemplateError, match="resource Taken: Instance run-1 is run by fogbank"):
        registry.apply_template([SHOP, WEB], [ORDERS, PLAIN, PROBED], [taken])
