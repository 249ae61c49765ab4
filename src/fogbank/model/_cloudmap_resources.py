"""Cloud Map namespaces, services and instances declared in a template
(`AWS::ServiceDiscovery::*`).

They become `NamespaceSpec`s, `DiscoveryServiceSpec`s and `DiscoveryInstanceSpec`s, which the
registry creates at start-up under the ids `Ref` gives them (`_service_arns`). VPC settings are
accepted and ignored: every namespace is served by fogbank's own registry and DNS server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fogbank.model._props import Props
from fogbank.model._service import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    DnsRecord,
    HealthCheckConfig,
    NamespaceSpec,
    NamespaceType,
)
from fogbank.model._service_arns import DISCOVERY_INSTANCE, DISCOVERY_SERVICE, NAMESPACE_TYPES
from fogbank.model._service_props import ServiceProps

RECORD_TYPES = ("A", "AAAA", "SRV", "CNAME")
ROUTING_POLICIES = ("MULTIVALUE", "WEIGHTED")
HEALTH_CHECK_TYPES = ("HTTP", "HTTPS", "TCP")
MAX_TTL = 2_147_483_647
# Cloud Map's rule for service names (DNS labels joined by dots).
_SERVICE_NAME = re.compile(
    r"(?=.{1,127}$)([A-Za-z0-9_][A-Za-z0-9_-]{0,61}[A-Za-z0-9_]|[A-Za-z0-9])"
    r"(\.([A-Za-z0-9_][A-Za-z0-9_-]{0,61}[A-Za-z0-9_]|[A-Za-z0-9]))*"
)
_NAMESPACE_NAME = re.compile(r"[!-~]{1,1024}")


def read_namespaces(
    resources: Mapping[str, Mapping[str, Any]], *, file: str
) -> dict[str, NamespaceSpec]:
    """Every namespace in `resources` (resolved, post-SAM), by logical id."""
    namespaces: dict[str, NamespaceSpec] = {}
    for logical_id, resource in resources.items():
        kind = NAMESPACE_TYPES.get(resource["Type"])
        if kind is None:
            continue
        props = Props(file, logical_id, resource["Properties"])
        name = props.text("Name", default="")
        if not _NAMESPACE_NAME.fullmatch(name):
            raise props.error("Name", f"namespace name {name!r} is not valid")
        for other in namespaces.values():
            # DNS names are case-insensitive, and the registry finds namespaces by name.
            if other.name.lower() == name.lower():
                raise props.error(
                    "Name", f"namespace {name} is already declared by {other.logical_id}"
                )
        namespaces[logical_id] = NamespaceSpec(
            logical_id=logical_id,
            name=name,
            type=kind,
            description=props.text("Description", default=""),
        )
    return namespaces


def read_discovery_services(
    resources: Mapping[str, Mapping[str, Any]],
    namespaces: Mapping[str, NamespaceSpec],
    *,
    file: str,
) -> dict[str, DiscoveryServiceSpec]:
    """Every `AWS::ServiceDiscovery::Service` in `resources`, by logical id."""
    services: dict[str, DiscoveryServiceSpec] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != DISCOVERY_SERVICE:
            continue
        props = ServiceProps(file, logical_id, resource["Properties"])
        service = _discovery_service(props, namespaces)
        for other in services.values():
            same = (other.namespace_logical_id, other.name.lower())
            if same == (service.namespace_logical_id, service.name.lower()):
                raise props.error(
                    "Name",
                    f"service {service.name} is already declared in this namespace by"
                    f" {other.logical_id}",
                )
        services[logical_id] = service
    return services


def read_discovery_instances(
    resources: Mapping[str, Mapping[str, Any]],
    services: Mapping[str, DiscoveryServiceSpec],
    *,
    file: str,
) -> dict[str, DiscoveryInstanceSpec]:
    """Every `AWS::ServiceDiscovery::Instance` in `resources`, by logical id. The attributes'
    rules that depend on the service's records are the registry's, checked when it applies
    the template (the error names the resource all the same)."""
    instances: dict[str, DiscoveryInstanceSpec] = {}
    taken: dict[tuple[str, str], str] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != DISCOVERY_INSTANCE:
            continue
        props = Props(file, logical_id, resource.get("Properties") or {})
        reference = props.text("ServiceId", default="")
        if not reference:
            raise props.error("ServiceId", "ServiceId is required (for example !Ref MyService)")
        service = next((s for s in services.values() if _names(reference, s.service_id)), None)
        if service is None:
            raise props.error("ServiceId", f"{reference} names no service in this template")
        instance_id = props.text("InstanceId", default=logical_id)
        holder = taken.setdefault((service.logical_id, instance_id), logical_id)
        if holder != logical_id:
            raise props.error(
                "InstanceId", f"instance {instance_id} of {service.logical_id} is also {holder}'s"
            )
        instances[logical_id] = DiscoveryInstanceSpec(
            logical_id=logical_id,
            service_logical_id=service.logical_id,
            instance_id=instance_id,
            attributes=_attributes(props),
        )
    return instances


def _attributes(props: Props) -> dict[str, str]:
    values = props.nested("InstanceAttributes")
    if not isinstance(values, dict) or not values:
        raise props.error(
            "InstanceAttributes",
            "InstanceAttributes is required: a map such as {AWS_INSTANCE_IPV4: 10.0.0.5}",
        )
    attributes: dict[str, str] = {}
    for key, value in values.items():
        # Scalars are text to CloudFormation (a YAML port number is "5432"); lists are not.
        if isinstance(value, dict | list) or value is None:
            raise props.error(f"InstanceAttributes.{key}", f"expected a string, got {value!r}")
        attributes[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return attributes


def _discovery_service(
    props: ServiceProps, namespaces: Mapping[str, NamespaceSpec]
) -> DiscoveryServiceSpec:
    name = props.text("Name", default=props.logical_id)
    if not _SERVICE_NAME.fullmatch(name):
        raise props.error("Name", f"service name {name!r} is not a valid DNS name")
    namespace = _namespace(props, namespaces)
    records: tuple[DnsRecord, ...] = ()
    routing = "MULTIVALUE"
    if props.nested("DnsConfig") is not None:
        if namespace.type is NamespaceType.HTTP:
            raise props.error(
                "DnsConfig", f"{namespace.name} is an HTTP namespace, whose services have no DNS"
            )
        records = _records(props)
        routing = props.text("DnsConfig", "RoutingPolicy", default=routing).upper()
        if routing not in ROUTING_POLICIES:
            raise props.error(
                "DnsConfig.RoutingPolicy", f"expected MULTIVALUE or WEIGHTED, got {routing}"
            )
    checked, custom = props.nested("HealthCheckConfig"), props.nested("HealthCheckCustomConfig")
    if checked is not None and custom is not None:
        raise props.error(
            "HealthCheckCustomConfig", "give HealthCheckConfig or HealthCheckCustomConfig, not both"
        )
    kind = props.nested("Type")
    if kind is not None and props.text("Type") != "HTTP":
        raise props.error("Type", f"the only service type is HTTP, got {props.text('Type')}")
    return DiscoveryServiceSpec(
        logical_id=props.logical_id,
        name=name,
        namespace_logical_id=namespace.logical_id,
        dns_records=records,
        routing_policy=routing,
        health_check=None if checked is None else _health_check(props),
        custom_health_failure_threshold=None
        if custom is None
        else props.number("HealthCheckCustomConfig", "FailureThreshold", default=1, low=1, high=10),
        description=props.text("Description", default=""),
        type=None if kind is None else "HTTP",
    )


def _namespace(props: Props, namespaces: Mapping[str, NamespaceSpec]) -> NamespaceSpec:
    """The template namespace `NamespaceId` (or the older `DnsConfig.NamespaceId`) names."""
    keys: tuple[str, ...] = ("NamespaceId",)
    if props.nested("NamespaceId") is None and props.nested("DnsConfig", "NamespaceId") is not None:
        keys = ("DnsConfig", "NamespaceId")
    reference = props.text(*keys, default="")
    if not reference:
        raise props.error("NamespaceId", "NamespaceId is required (for example !Ref MyNamespace)")
    for namespace in namespaces.values():
        if _names(reference, namespace.namespace_id):
            return namespace
    raise props.error(".".join(keys), f"{reference} names no namespace in this template")


def _names(reference: str, resource_id: str) -> bool:
    """`!Ref X` and `!GetAtt X.Id` give the id; `!GetAtt X.Arn` ends in `namespace/<id>` or
    `service/<id>`."""
    return reference.rsplit("/", 1)[-1] == resource_id


def _records(props: ServiceProps) -> tuple[DnsRecord, ...]:
    prop = "DnsConfig.DnsRecords"
    entries = props.nested("DnsConfig", "DnsRecords")
    if not isinstance(entries, list) or not entries:
        raise props.error(prop, "expected a list of records ({Type, TTL})")
    records: list[DnsRecord] = []
    for index, entry in enumerate(entries):
        at = f"{prop}[{index}]"
        if not isinstance(entry, dict):
            raise props.error(at, f"expected a record ({{Type, TTL}}), got {entry!r}")
        record = props.child(at, entry)
        kind = record.text("Type", default="").upper()
        if kind not in RECORD_TYPES:
            expected = ", ".join(RECORD_TYPES)
            raise record.error("Type", f"expected one of {expected}, got {kind or '(none)'}")
        ttl = record.number("TTL", default=60, low=0, high=MAX_TTL, unit=" seconds")
        records.append(DnsRecord(kind, ttl))
    return tuple(records)


def _health_check(props: Props) -> HealthCheckConfig:
    key = "HealthCheckConfig"
    kind = props.text(key, "Type", default="").upper()
    if kind not in HEALTH_CHECK_TYPES:
        raise props.error(f"{key}.Type", f"expected HTTP, HTTPS or TCP, got {kind or '(none)'}")
    path = props.text(key, "ResourcePath", default="/")
    if not path.startswith("/"):
        raise props.error(f"{key}.ResourcePath", f"path {path} must start with /")
    return HealthCheckConfig(
        type=kind,
        resource_path=path,
        failure_threshold=props.number(key, "FailureThreshold", default=1, low=1, high=10),
    )
