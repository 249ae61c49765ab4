"""Service records, built and checked in one place (the API's, the template's and the
supervisor's services), and the plan that applies a template to the registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fogbank._errors import TemplateError
from fogbank.discovery._records import (
    CloudMapError,
    HealthStatus,
    Instance,
    Namespace,
    Owner,
    Service,
)
from fogbank.discovery._rules import (
    check_attributes,
    check_description,
    check_dns_config,
    check_failure_threshold,
    check_health_check,
    check_instance_id,
    check_namespace_name,
    check_service_name,
    invalid,
    name_key,
)
from fogbank.model import (
    TEMPLATE_REQUEST,
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    DnsRecord,
    HealthCheckConfig,
    NamespaceSpec,
    NamespaceType,
    discovery_id,
)

if TYPE_CHECKING:
    from fogbank.discovery._catalog import Catalog

_SERVICE_TYPES = ("HTTP", "DNS_HTTP", "DNS")
IMPLICIT_TTL = 10
"""The A and SRV TTL of a service `ensure_service` creates."""
_IMPLICIT = "Created by fogbank for a service's registry binding"


class Entry:
    """A service, its instances in registration order, its revision, and the instance tuples
    the read paths return (rebuilt after a change, never copied per read)."""

    __slots__ = ("_all", "_healthy", "_unhealthy", "instances", "revision", "service")

    def __init__(self, service: Service, revision: int = 0) -> None:
        self.service = service
        self.instances: dict[str, Instance] = {}
        self.revision = revision
        self._reset()

    def _reset(self) -> None:
        self._all: tuple[Instance, ...] | None = None
        self._healthy: tuple[Instance, ...] | None = None
        self._unhealthy: tuple[Instance, ...] | None = None

    def all(self) -> tuple[Instance, ...]:
        if self._all is None:
            self._all = tuple(self.instances.values())
        return self._all

    def healthy(self) -> tuple[Instance, ...]:
        """HEALTHY and UNKNOWN instances: no health check counts as healthy."""
        if self._healthy is None:
            self._healthy = tuple(i for i in self.all() if i.health is not HealthStatus.UNHEALTHY)
        return self._healthy

    def unhealthy(self) -> tuple[Instance, ...]:
        if self._unhealthy is None:
            self._unhealthy = tuple(i for i in self.all() if i.health is HealthStatus.UNHEALTHY)
        return self._unhealthy

    def put(self, instance: Instance) -> None:
        self.instances[instance.id] = instance
        self._reset()

    def remove(self, instance_id: str) -> None:
        del self.instances[instance_id]
        self._reset()


def build_service(
    service_id: str,
    arn: str,
    name: str,
    namespace: Namespace,
    *,
    dns_records: tuple[DnsRecord, ...],
    routing_policy: str,
    health_check: HealthCheckConfig | None,
    custom_health_failure_threshold: int | None,
    description: str,
    type: str | None,
    created: float,
    creator_request_id: str | None = None,
    from_template: bool = False,
) -> Service:
    """A checked service record; `type` None derives Cloud Map's: DNS_HTTP with DNS records,
    HTTP without."""
    check_service_name(name)
    check_description(description)
    check_dns_config(dns_records, routing_policy, health_check, namespace.type)
    if health_check is not None:
        check_health_check(health_check)
    if custom_health_failure_threshold is not None:
        if health_check is not None:
            raise invalid("HealthCheckConfig and HealthCheckCustomConfig exclude each other.")
        check_failure_threshold(custom_health_failure_threshold)
    if type is None:
        type = "DNS_HTTP" if dns_records else "HTTP"
    elif type not in _SERVICE_TYPES:
        raise invalid(f"Type must be HTTP, not {type!r}.")
    elif (type == "HTTP") == bool(dns_records):
        raise invalid(
            f"A service of Type {type} {'cannot' if dns_records else 'must'} have DNS records."
        )
    return Service(
        id=service_id,
        arn=arn,
        name=name,
        namespace_id=namespace.id,
        dns_records=dns_records,
        routing_policy=routing_policy,
        health_check=health_check,
        custom_health_failure_threshold=custom_health_failure_threshold,
        description=description,
        type=type,
        created=created,
        creator_request_id=creator_request_id,
        from_template=from_template,
    )


@dataclass
class TemplatePlan:
    """What applying a template does: records to put, and earlier template resources to drop."""

    namespaces: list[Namespace] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    gone_services: list[Service] = field(default_factory=list)
    gone_namespaces: list[Namespace] = field(default_factory=list)


def template_changes(
    catalog: Catalog,
    namespaces: Sequence[NamespaceSpec],
    services: Sequence[DiscoveryServiceSpec],
    implicit: set[str],
    now: float,
) -> TemplatePlan:
    """Check the whole template first (nothing changes when a resource is invalid; the error
    names it), then plan the changes. A resource of an earlier template that the new one drops
    is removed unless it is in use (a namespace with services, a service with instances)."""
    plan = TemplatePlan()
    old_namespaces = {ns.id: ns for ns in catalog.namespaces()}
    old_services = {s.id: s for s in catalog.services()}
    wanted = {spec.namespace_id for spec in namespaces} | {spec.service_id for spec in services}
    # A template resource about to be dropped does not hold its name against the new ones.
    records: list[Namespace | Service] = [*old_namespaces.values(), *old_services.values()]
    replaced = {
        record.id
        for record in records
        if record.from_template and record.id not in implicit and record.id not in wanted
    }
    names = {name_key(ns.name): ns.id for ns in old_namespaces.values() if ns.id not in replaced}
    planned: dict[str, Namespace] = {}
    for ns_spec in namespaces:
        try:
            check_namespace_name(ns_spec.name, ns_spec.type)
            check_description(ns_spec.description)
        except CloudMapError as exc:
            raise TemplateError(exc.message, resource=ns_spec.logical_id) from None
        holder = names.setdefault(name_key(ns_spec.name), ns_spec.namespace_id)
        if holder != ns_spec.namespace_id:
            raise TemplateError(
                f"namespace name {ns_spec.name} is taken by namespace {holder}",
                resource=ns_spec.logical_id,
            )
        old = old_namespaces.get(ns_spec.namespace_id)
        planned[ns_spec.namespace_id] = Namespace(
            id=ns_spec.namespace_id,
            arn=catalog.namespace_arn(ns_spec.namespace_id),
            name=ns_spec.name,
            type=ns_spec.type,
            description=ns_spec.description,
            created=old.created if old else now,
            updated=now,
            creator_request_id=old.creator_request_id if old else None,
            from_template=True,
        )
    plan.namespaces = list(planned.values())
    every_namespace = {**old_namespaces, **planned}
    hosts = {
        name_key(f"{s.name}.{every_namespace[s.namespace_id].name}"): s.id
        for s in old_services.values()
        if s.id not in replaced and s.namespace_id in every_namespace
    }
    for spec in services:
        namespace = every_namespace.get(discovery_id("ns", spec.namespace_logical_id))
        if namespace is None:
            raise TemplateError(
                f"namespace {spec.namespace_logical_id} is not in the template",
                resource=spec.logical_id,
            )
        holder = hosts.setdefault(name_key(f"{spec.name}.{namespace.name}"), spec.service_id)
        if holder != spec.service_id:
            raise TemplateError(
                f"service name {spec.name} is taken in {namespace.name} by service {holder}",
                resource=spec.logical_id,
            )
        old_service = old_services.get(spec.service_id)
        try:
            service = build_service(
                spec.service_id,
                catalog.service_arn(spec.service_id),
                spec.name,
                namespace,
                dns_records=spec.dns_records,
                routing_policy=spec.routing_policy,
                health_check=spec.health_check,
                custom_health_failure_threshold=spec.custom_health_failure_threshold,
                description=spec.description,
                type=spec.type,
                created=old_service.created if old_service else now,
                from_template=True,
            )
        except CloudMapError as exc:
            raise TemplateError(exc.message, resource=spec.logical_id) from None
        plan.services.append(service)
    in_use = {service.namespace_id for service in plan.services}
    for service in old_services.values():
        if service.id in replaced and not catalog.instance_count(service.id):
            plan.gone_services.append(service)
        else:
            in_use.add(service.namespace_id)
    plan.gone_namespaces = [
        ns for ns in old_namespaces.values() if ns.id in replaced and ns.id not in in_use
    ]
    return plan


def check_template_instances(
    catalog: Catalog, plan: TemplatePlan, instances: Sequence[DiscoveryInstanceSpec]
) -> None:
    """Check the template's instances against the services they will be in (planned or kept),
    before anything changes; an error names the resource."""
    existing = {service.id: service for service in catalog.services()}
    services = {**existing, **{service.id: service for service in plan.services}}
    for spec in instances:
        service = services.get(spec.service_id)
        try:
            if service is None:
                raise CloudMapError("ServiceNotFound", f"Service not found: {spec.service_id}")
            check_instance_id(spec.instance_id)
            check_attributes(service, dict(spec.attributes))
            running = catalog.instances(service.id) if service.id in existing else ()
            old = {i.id: i for i in running}.get(spec.instance_id)
            if old is not None and old.owner is Owner.SUPERVISOR:
                raise CloudMapError(
                    "ResourceInUse", f"Instance {spec.instance_id} is run by fogbank's supervisor."
                )
        except CloudMapError as exc:
            raise TemplateError(exc.message, resource=spec.logical_id) from None


def stale_template_instances(
    catalog: Catalog, instances: Sequence[DiscoveryInstanceSpec]
) -> list[Instance]:
    """Instances an earlier template registered that this one no longer declares."""
    wanted = {(spec.service_id, spec.instance_id) for spec in instances}
    return [
        instance
        for service in catalog.services()
        for instance in catalog.instances(service.id)
        if (instance.creator_request_id or "").startswith(TEMPLATE_REQUEST)
        and (instance.service_id, instance.id) not in wanted
    ]


def implicit_records(
    catalog: Catalog,
    namespace: Namespace | None,
    namespace_name: str,
    service_name: str,
    now: float,
) -> tuple[Namespace, Service]:
    """`ensure_service`'s records: a service with A and SRV records (TTL 10 s) and custom
    health, in `namespace`, or in a new DNS_PRIVATE namespace when that is None.

    The ids derive from the names, so a binding finds the same ids after a restart (and the API
    instances stored in such a service come back to it)."""
    if namespace is None:
        check_namespace_name(namespace_name, NamespaceType.DNS_PRIVATE)
        namespace_id = discovery_id("ns", f"fogbank:{namespace_name.lower()}")
        namespace = Namespace(
            id=namespace_id,
            arn=catalog.namespace_arn(namespace_id),
            name=namespace_name,
            type=NamespaceType.DNS_PRIVATE,
            description=_IMPLICIT,
            created=now,
            updated=now,
            from_template=True,
        )
    service_id = discovery_id("srv", f"fogbank:{namespace.name.lower()}/{service_name.lower()}")
    dns = namespace.type is not NamespaceType.HTTP
    service = build_service(
        service_id,
        catalog.service_arn(service_id),
        service_name,
        namespace,
        dns_records=(DnsRecord("A", IMPLICIT_TTL), DnsRecord("SRV", IMPLICIT_TTL)) if dns else (),
        routing_policy="MULTIVALUE",
        health_check=None,
        custom_health_failure_threshold=1,
        description=_IMPLICIT,
        type=None,
        created=now,
        from_template=True,
    )
    return namespace, service
