"""The registry's state file: what survives a re-open, what does not, and unreadable files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fogbank._errors import FogbankError
from fogbank.discovery import CloudMapError, HealthStatus, Owner, Registry
from fogbank.discovery._ledgers import OperationLog
from fogbank.discovery._registry_store import RegistryStore
from fogbank.model import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    DnsRecord,
    HealthCheckConfig,
    Identity,
    NamespaceSpec,
    NamespaceType,
)

SHOP = NamespaceSpec("Shop", "shop.local", NamespaceType.DNS_PRIVATE)
ORDERS = DiscoveryServiceSpec(
    "Orders", "orders", "Shop", dns_records=(DnsRecord("A", 30),), custom_health_failure_threshold=1
)
ADDR = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}


def open_registry(path: Path) -> Registry:
    return Registry(Identity(), path)


def test_api_records_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "discovery.sqlite"
    registry = open_registry(path)
    registry.create_namespace(
        "corp.local", NamespaceType.DNS_PRIVATE, description="corp", soa_ttl=60, tags={"team": "a"}
    )
    web_op = registry.create_namespace("web", NamespaceType.HTTP, creator_request_id="r-1")
    corp = registry.namespaces()[0]
    billing = registry.create_service(
        "billing",
        corp.id,
        dns_records=[DnsRecord("A", 5), DnsRecord("SRV", 5)],
        health_check=HealthCheckConfig("HTTP", "/ping", 3),
        tags={"tier": "gold"},
    )
    registry.update_service_attributes(billing.id, {"owner": "finance"})
    register = registry.register_instance(billing.id, "api-1", ADDR, creator_request_id="c-1")
    registry.register_instance(billing.id, "api-2", {**ADDR, "AWS_INSTANCE_IPV4": "10.0.0.2"})
    registry.set_health(billing.id, "api-1", HealthStatus.UNHEALTHY)
    registry.register_instance(billing.id, "sup-1", ADDR, owner=Owner.SUPERVISOR)
    registry.deregister_instance(billing.id, "api-2")
    namespaces, services = registry.namespaces(), registry.services()
    revision = registry.revision(billing.id)
    operations = registry.operations.all()
    registry.close()

    again = open_registry(path)
    assert again.namespaces() == namespaces
    assert again.soa_ttl(corp.id) == 60
    assert again.soa_ttl(namespaces[1].id) is None
    assert again.services() == services
    assert again.resolve_name("billing.corp.local") == billing
    (instance,) = again.instances(billing.id)  # the supervised one ended with the node
    assert (instance.id, instance.attributes, instance.health) == (
        "api-1",
        ADDR,
        HealthStatus.UNHEALTHY,
    )
    assert (instance.owner, instance.creator_request_id) == (Owner.API, "c-1")
    assert again.revision(billing.id) == revision == 4
    assert again.operations.all() == operations
    assert again.operations.get(register.id) == register
    assert again.tags.get(corp.arn) == {"team": "a"}
    assert again.tags.get(billing.arn) == {"tier": "gold"}
    assert again.service_attributes.get(billing.id) == {"owner": "finance"}
    # The creator request id still makes a retried create idempotent.
    assert again.create_namespace("web", NamespaceType.HTTP, creator_request_id="r-1") == web_op


def test_deletions_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "discovery.sqlite"
    registry = open_registry(path)
    registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE, tags={"a": "b"})
    corp = registry.namespaces()[0]
    billing = registry.create_service("billing", corp.id, tags={"c": "d"})
    registry.update_service_attributes(billing.id, {"x": "1", "y": "2"})
    registry.delete_service_attributes(billing.id, ["x"])
    registry.untag_resource(corp.arn, ["a"])
    registry.register_instance(billing.id, "i-1", {})
    registry.deregister_instance(billing.id, "i-1")
    registry.close()
    again = open_registry(path)
    assert again.service_attributes.get(billing.id) == {"y": "2"}
    assert again.tags.get(corp.arn) == {}
    assert again.instances(billing.id) == ()
    again.delete_service(billing.id)
    again.delete_namespace(corp.id)
    again.close()
    last = open_registry(path)
    assert (last.namespaces(), last.services()) == ([], [])
    assert last.tags.get(billing.arn) == {}
    assert [op.type for op in last.operations.all()] == [
        "CREATE_NAMESPACE",
        "REGISTER_INSTANCE",
        "DEREGISTER_INSTANCE",
        "DELETE_NAMESPACE",
    ]


def test_template_resources_come_back_from_the_template_with_their_instances(
    tmp_path: Path,
) -> None:
    path = tmp_path / "discovery.sqlite"
    registry = open_registry(path)
    registry.apply_template([SHOP], [ORDERS])
    registry.register_instance(ORDERS.service_id, "ext-1", ADDR)
    registry.close()
    again = open_registry(path)
    assert again.namespaces() == []  # not stored: the template brings them
    with pytest.raises(CloudMapError):
        again.instances(ORDERS.service_id)
    again.apply_template([SHOP], [ORDERS])
    assert [i.id for i in again.instances(ORDERS.service_id)] == ["ext-1"]
    assert again.revision(ORDERS.service_id) == 1
    assert again.discover("shop.local", "orders")[0][0].attributes == ADDR


def test_a_template_instance_outlives_a_restart_until_the_template_drops_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "discovery.sqlite"
    db = DiscoveryInstanceSpec("Db", "Orders", "db-1", ADDR)
    registry = open_registry(path)
    registry.apply_template([SHOP], [ORDERS], [db])
    registry.close()
    again = open_registry(path)
    again.apply_template([SHOP], [ORDERS], [db])
    kept = again.get_instance(ORDERS.service_id, "db-1")
    assert (dict(kept.attributes), kept.creator_request_id) == (ADDR, "fogbank-template:Db")
    again.close()
    last = open_registry(path)
    last.apply_template([SHOP], [ORDERS])  # the template no longer declares it
    assert last.instances(ORDERS.service_id) == ()
    last.close()
    final = open_registry(path)
    final.apply_template([SHOP], [ORDERS])
    assert final.instances(ORDERS.service_id) == ()


def test_ensure_services_find_their_stored_instances_again(tmp_path: Path) -> None:
    path = tmp_path / "discovery.sqlite"
    registry = open_registry(path)
    made = registry.ensure_service("corp.local", "billing")
    registry.register_instance(made.id, "ext-1", ADDR)
    registry.close()
    again = open_registry(path)
    assert again.ensure_service("corp.local", "billing").id == made.id
    assert [i.id for i in again.instances(made.id)] == ["ext-1"]


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "discovery.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(FogbankError) as exc:
        open_registry(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: the discovery registry's state cannot be read (")
    assert message.endswith("move the file aside to start with an empty registry")
    assert path.read_bytes() == b"this is not SQLite" * 100  # nothing dropped


def test_an_unreadable_record_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "discovery.sqlite"
    open_registry(path).create_namespace("web", NamespaceType.HTTP)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET body = ? WHERE kind = 'namespace'", (b'{"id": 1}',))
    with pytest.raises(FogbankError) as exc:
        open_registry(path)
    assert str(exc.value).startswith(f"{path}: the discovery registry's state cannot be read")
    assert "record namespace ns-" in str(exc.value)


def test_a_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FogbankError, match="the discovery registry's state cannot be read"):
        RegistryStore(tmp_path)


def test_the_operation_log_forgets_the_oldest_past_its_limit() -> None:
    log = OperationLog(lambda: 5.0, limit=2)
    first, second, third = (log.make("REGISTER_INSTANCE", {"INSTANCE": str(n)}) for n in range(3))
    for operation in (first, second):
        assert [c[2] is not None for c in log.changes(operation)] == [True]
        log.add(operation)
    changes = log.changes(third)
    assert changes[1] == ("operation", first.id, None)
    log.add(third)
    assert log.all() == [second, third]
    assert len(first.id) == 41
    assert first.id[32] == "-"
    assert (first.created, first.updated) == (5.0, 5.0)
