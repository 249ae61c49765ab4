"""Namespaces, services, tags and service attributes, as the Cloud Map API manages them."""

from __future__ import annotations

import re

import pytest

from fogbank.discovery import CloudMapError, OperationStatus, Registry
from fogbank.model import DnsRecord, HealthCheckConfig, Identity, NamespaceType

ADDR = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}


@pytest.fixture
def registry() -> Registry:
    return Registry(Identity(region="us-east-1", account_id="123456789012"), clock=lambda: 100.0)


def fails(code: str, status: int, call: object, *args: object, **kwargs: object) -> CloudMapError:
    assert callable(call)
    with pytest.raises(CloudMapError) as exc:
        call(*args, **kwargs)
    assert (exc.value.code, exc.value.status) == (code, status)
    return exc.value


def test_create_namespace(registry: Registry) -> None:
    operation = registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE, soa_ttl=30)
    assert (operation.type, operation.status) == ("CREATE_NAMESPACE", OperationStatus.SUCCESS)
    (namespace,) = registry.namespaces()
    assert re.fullmatch(r"ns-[a-z0-9]{16}", namespace.id)
    assert operation.targets == {"NAMESPACE": namespace.id}
    assert (
        namespace.arn == f"arn:aws:servicediscovery:us-east-1:123456789012:namespace/{namespace.id}"
    )
    assert (namespace.created, namespace.updated, namespace.from_template) == (100.0, 100.0, False)
    assert registry.soa_ttl(namespace.id) == 30
    registry.create_namespace("web", NamespaceType.HTTP)
    registry.create_namespace("example.com", NamespaceType.DNS_PUBLIC)
    assert [registry.soa_ttl(ns.id) for ns in registry.namespaces()] == [30, None, 15]


def test_duplicate_namespace_names(registry: Registry) -> None:
    first = registry.create_namespace("web", NamespaceType.HTTP, creator_request_id="r-1")
    web = registry.namespaces()[0]
    assert registry.create_namespace("web", NamespaceType.HTTP, creator_request_id="r-1") == first
    error = fails(
        "NamespaceAlreadyExists", 400, registry.create_namespace, "WEB", NamespaceType.HTTP
    )
    assert error.fields == {"NamespaceId": web.id, "CreatorRequestId": "r-1"}
    assert len(registry.namespaces()) == 1


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("", NamespaceType.HTTP),
        ("has space", NamespaceType.HTTP),
        ("arn:aws:x", NamespaceType.HTTP),
        ("x" * 254, NamespaceType.DNS_PRIVATE),
        ("-bad-.com", NamespaceType.DNS_PUBLIC),
        ("nodot", NamespaceType.DNS_PUBLIC),
    ],
)
def test_invalid_namespace_names(registry: Registry, name: str, kind: NamespaceType) -> None:
    fails("InvalidInput", 400, registry.create_namespace, name, kind)


def test_update_and_delete_namespace(registry: Registry) -> None:
    registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE, description="old")
    corp = registry.namespaces()[0]
    fails("InvalidInput", 400, registry.update_namespace, corp.id, NamespaceType.HTTP)
    fails("NamespaceNotFound", 404, registry.update_namespace, "ns-x", NamespaceType.HTTP)
    operation = registry.update_namespace(corp.id, NamespaceType.DNS_PRIVATE, soa_ttl=99)
    assert operation.type == "UPDATE_NAMESPACE"
    assert registry.get_namespace(corp.id).description == "old"
    assert registry.soa_ttl(corp.id) == 99
    registry.update_namespace(corp.id, NamespaceType.DNS_PRIVATE, description="new")
    assert registry.get_namespace(corp.id).description == "new"
    service = registry.create_service("billing", corp.id)
    fails("ResourceInUse", 409, registry.delete_namespace, corp.id)
    registry.delete_service(service.id)
    assert registry.delete_namespace(corp.id).type == "DELETE_NAMESPACE"
    fails("NamespaceNotFound", 404, registry.get_namespace, corp.id)
    assert registry.resolve_name("billing.corp.local") is None


def test_create_service(registry: Registry) -> None:
    registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE)
    registry.create_namespace("web", NamespaceType.HTTP)
    corp, web = registry.namespaces()
    dns = registry.create_service(
        "billing", corp.id, dns_records=[DnsRecord("A", 5)], custom_health_failure_threshold=2
    )
    assert re.fullmatch(r"srv-[a-z0-9]{16}", dns.id)
    assert dns.arn == f"arn:aws:servicediscovery:us-east-1:123456789012:service/{dns.id}"
    assert (dns.type, dns.routing_policy, dns.created) == ("DNS_HTTP", "MULTIVALUE", 100.0)
    assert registry.create_service("api", corp.id, type="HTTP").type == "HTTP"
    assert registry.create_service("api", web.id).type == "HTTP"
    assert registry.resolve_name("billing.corp.local") == dns
    assert registry.service_count(corp.id) == 2
    fails("NamespaceNotFound", 404, registry.create_service, "x", "ns-nope")


def test_duplicate_service_names(registry: Registry) -> None:
    registry.create_namespace("web", NamespaceType.HTTP)
    web = registry.namespaces()[0]
    api = registry.create_service("api", web.id, creator_request_id="c-1")
    assert registry.create_service("api", web.id, creator_request_id="c-1") == api
    error = fails("ServiceAlreadyExists", 400, registry.create_service, "API", web.id)
    assert error.fields == {"ServiceId": api.id, "ServiceArn": api.arn, "CreatorRequestId": "c-1"}


@pytest.mark.parametrize(
    ("namespace", "options", "message"),
    [
        ("web", {"dns_records": [DnsRecord("A", 5)]}, "HTTP namespace"),
        ("corp", {"dns_records": [DnsRecord("MX", 5)]}, "record type"),
        ("corp", {"dns_records": [DnsRecord("A", -1)]}, "TTL"),
        ("corp", {"dns_records": [DnsRecord("A", 5), DnsRecord("A", 6)]}, "twice"),
        ("corp", {"dns_records": [DnsRecord("CNAME", 5)]}, "WEIGHTED"),
        ("corp", {"dns_records": [DnsRecord("A", 5)], "routing_policy": "ANY"}, "RoutingPolicy"),
        ("corp", {"dns_records": [DnsRecord("A", 5)], "type": "HTTP"}, "cannot have DNS"),
        ("corp", {"type": "DNS_HTTP"}, "must have DNS"),
        ("web", {"type": "GRPC"}, "Type"),
        ("web", {"health_check": HealthCheckConfig("UDP")}, "HTTP, HTTPS or TCP"),
        ("web", {"health_check": HealthCheckConfig("HTTP", "/", 11)}, "1 to 10"),
        ("web", {"custom_health_failure_threshold": 0}, "1 to 10"),
        (
            "web",
            {"health_check": HealthCheckConfig(), "custom_health_failure_threshold": 1},
            "exclude each other",
        ),
        ("web", {"description": "d" * 1025}, "1024"),
    ],
)
def test_invalid_services(
    registry: Registry, namespace: str, options: dict[str, object], message: str
) -> None:
    registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE)
    registry.create_namespace("web", NamespaceType.HTTP)
    ids = {ns.name.split(".")[0]: ns.id for ns in registry.namespaces()}
    error = fails("InvalidInput", 400, registry.create_service, "svc", ids[namespace], **options)
    assert message in error.message
    fails("InvalidInput", 400, registry.create_service, "bad name!", ids["web"])
    assert registry.services() == []


def test_update_service(registry: Registry) -> None:
    registry.create_namespace("corp.local", NamespaceType.DNS_PRIVATE)
    corp = registry.namespaces()[0]
    service = registry.create_service(
        "billing",
        corp.id,
        description="d",
        dns_records=[DnsRecord("A", 5), DnsRecord("SRV", 5)],
        health_check=HealthCheckConfig("HTTP", "/ping", 2),
    )
    heard: list[str] = []
    registry.watch(heard.append)
    operation = registry.update_service(service.id, dns_records=[DnsRecord("A", 60)])
    assert (operation.type, operation.targets) == ("UPDATE_SERVICE", {"SERVICE": service.id})
    updated = registry.get_service(service.id)
    assert updated.dns_records == (DnsRecord("A", 60),)
    assert (updated.description, updated.health_check) == ("d", None)  # left out: removed
    assert registry.resolve_name("billing.corp.local") == updated
    assert heard == [service.id]
    error = fails(
        "InvalidInput", 400, registry.update_service, service.id, dns_records=[DnsRecord("AAAA", 5)]
    )
    assert "existing DNS records" in error.message
    registry.update_service(service.id, description="", health_check=HealthCheckConfig("TCP", ""))
    assert registry.get_service(service.id).health_check == HealthCheckConfig("TCP", "")
    assert registry.get_service(service.id).description == ""
    custom = registry.create_service("custom", corp.id, custom_health_failure_threshold=1)
    error = fails(
        "InvalidInput", 400, registry.update_service, custom.id, health_check=HealthCheckConfig()
    )
    fails("ServiceNotFound", 404, registry.update_service, "srv-nope")


def test_delete_service(registry: Registry) -> None:
    registry.create_namespace("web", NamespaceType.HTTP)
    web = registry.namespaces()[0]
    service = registry.create_service("api", web.id, tags={"a": "1"})
    registry.update_service_attributes(service.id, {"k": "v"})
    registry.register_instance(service.id, "i-1", ADDR)
    fails("ResourceInUse", 409, registry.delete_service, service.id)
    registry.deregister_instance(service.id, "i-1")
    heard: list[str] = []
    registry.watch(heard.append)
    registry.delete_service(service.id)
    assert heard == [service.id]
    fails("ServiceNotFound", 404, registry.get_service, service.id)
    fails("ResourceNotFoundException", 404, registry.tag_resource, service.arn, {"a": "2"})
    fails("ServiceNotFound", 404, registry.update_service_attributes, service.id, {"k": "v"})
    assert registry.tags.get(service.arn) == {}
    assert registry.service_attributes.get(service.id) == {}


def test_tags(registry: Registry) -> None:
    registry.create_namespace("web", NamespaceType.HTTP, tags={"a": "1"})
    web = registry.namespaces()[0]
    registry.tag_resource(web.arn, {"b": "2", "a": "3"})
    assert registry.tags.get(web.arn) == {"a": "3", "b": "2"}
    registry.untag_resource(web.arn, ["a", "missing"])
    assert registry.tags.get(web.arn) == {"b": "2"}
    many = {f"k{n}": "v" for n in range(200)}
    error = fails("TooManyTagsException", 400, registry.tag_resource, web.arn, many)
    assert error.fields == {"ResourceName": web.arn}
    fails("InvalidInput", 400, registry.tag_resource, web.arn, {"": "v"})
    fails("InvalidInput", 400, registry.tag_resource, web.arn, {"k": "v" * 257})
    for arn in (
        "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-nope",
        web.arn.replace("123456789012", "999999999999"),
        "not an arn",
    ):
        fails("ResourceNotFoundException", 404, registry.tag_resource, arn, {"a": "b"})
    fails(
        "TooManyTagsException",
        400,
        registry.create_namespace,
        "other",
        NamespaceType.HTTP,
        tags={f"k{n}": "v" for n in range(201)},
    )
    assert len(registry.namespaces()) == 1


def test_service_attributes(registry: Registry) -> None:
    registry.create_namespace("web", NamespaceType.HTTP)
    service = registry.create_service("api", registry.namespaces()[0].id)
    registry.update_service_attributes(service.id, {f"k{n}": "v" for n in range(30)})
    fails(
        "ServiceAttributesLimitExceededException",
        400,
        registry.update_service_attributes,
        service.id,
        {"one": "more"},
    )
    registry.update_service_attributes(service.id, {"k0": "changed"})
    registry.delete_service_attributes(service.id, [f"k{n}" for n in range(1, 30)])
    assert registry.service_attributes.get(service.id) == {"k0": "changed"}
