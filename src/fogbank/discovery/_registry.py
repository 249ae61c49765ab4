"""The registry: Cloud Map's model (namespaces, services, instances, operations) on one node.

Reads are synchronous and cheap: the DNS server and the gateway call `resolve_name`, `healthy`
and `discover` on every query, so each service keeps its instances as tuples (all, healthy,
unhealthy) that are rebuilt only after a change. Writes persist API-owned records
(`_registry_store`) before they take effect in memory.

Threading: the registry is not locked. Every caller (the Cloud Map API, the DNS server, the
gateway, the supervisor) runs on the node's one event loop thread; a caller on another thread
must hop onto the loop first (`loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from fogbank.discovery._catalog import DEFAULT_SOA_TTL, Catalog
from fogbank.discovery._ledgers import LabelBook
from fogbank.discovery._records import (
    CloudMapError,
    HealthFilter,
    HealthStatus,
    Instance,
    Namespace,
    Operation,
    Owner,
    Service,
)
from fogbank.discovery._registry_store import (
    Change,
    RegistryStore,
    StoredState,
    instance_change,
    instance_key,
)
from fogbank.discovery._rules import (
    check_attributes,
    check_instance_id,
    initial_health,
    invalid,
    name_key,
)
from fogbank.discovery._services import (
    Entry,
    TemplatePlan,
    check_template_instances,
    implicit_records,
    stale_template_instances,
    template_changes,
)
from fogbank.model import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    Identity,
    NamespaceSpec,
    NamespaceType,
)

log = logging.getLogger(__name__)


class Registry(Catalog):
    """Namespaces, services and instances, with change notification.

    Namespace and service management is `Catalog`'s; this class adds instances, health,
    discovery, watchers, tags and service attributes, the template's resources and the state
    file's loading.
    """

    def __init__(
        self,
        identity: Identity,
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        store = RegistryStore(path) if path is not None else None
        super().__init__(identity, store, clock)
        self._random = random.Random()
        self._watchers: list[Callable[[str], None]] = []
        if store is not None:
            self._load(store.load())

    def _load(self, state: StoredState) -> None:
        for namespace, soa_ttl in state.namespaces:
            self._namespaces[namespace.id] = namespace
            if soa_ttl is not None:
                self._soa_ttl[namespace.id] = soa_ttl
        self._stored_revisions = dict(state.revisions)
        for service in state.services:
            self._add_entry(service)
        for instance in state.instances:
            entry = self._entries.get(instance.service_id)
            if entry is not None:
                entry.put(instance)
            else:
                self._parked.setdefault(instance.service_id, []).append(instance)
        self.operations.load(state.operations)
        self.tags.load(state.tags)
        self.service_attributes.load(state.service_attributes)

    def close(self) -> None:
        """Close the state file (the registry is unusable afterwards)."""
        if self._store is not None:
            self._store.close()

    # -- the template's resources -------------------------------------------------------------
    def apply_template(
        self,
        namespaces: Iterable[NamespaceSpec],
        services: Iterable[DiscoveryServiceSpec],
        instances: Iterable[DiscoveryInstanceSpec] = (),
    ) -> None:
        """Create or update the template's namespaces and services (ids from `discovery_id`)
        and register its instances, as `RegisterInstance` would (their `CreatorRequestId`
        marks them); deregister the earlier template's instances it no longer declares, and
        remove its other resources that are gone from it, unless in use. Everything is checked
        before anything changes; an error names the resource."""
        ns_specs, svc_specs, wanted = list(namespaces), list(services), list(instances)
        plan = self._plan(ns_specs, svc_specs)
        check_template_instances(self, plan, wanted)
        if stale := stale_template_instances(self, wanted):
            self._drop_instances(stale)
            # Planned again: a service whose only instances were the template's may go now.
            plan = self._plan(ns_specs, svc_specs)
        changed = self._apply_plan(plan)
        # Stored instances of the services the template just created came back with them.
        if late := stale_template_instances(self, wanted):
            self._drop_instances(late)
            changed += self._apply_plan(self._plan(ns_specs, svc_specs))
        for service_id in dict.fromkeys(changed):
            self._notify(service_id)
        for spec in wanted:
            self.register_instance(
                spec.service_id,
                spec.instance_id,
                spec.attributes,
                creator_request_id=spec.creator_request_id,
            )

    def _drop_instances(self, instances: Iterable[Instance]) -> None:
        for instance in instances:
            self.deregister_instance(instance.service_id, instance.id)

    # -- reads used by DNS, the gateway and the supervisor ---------------------------------------
    def resolve_name(self, host: str) -> Service | None:
        """The service a `service.namespace` host name names (case-insensitive), or None."""
        return self._hosts().get(name_key(host))

    def find_service(self, namespace_name: str, service_name: str) -> Service | None:
        return self._hosts().get(name_key(f"{service_name}.{namespace_name}"))

    def healthy(self, service_id: str) -> Sequence[Instance]:
        """Instances whose health is HEALTHY or UNKNOWN, in registration order (not shuffled)."""
        return self._entry(service_id).healthy()

    def get_instance(self, service_id: str, instance_id: str) -> Instance:
        """Raises `ServiceNotFound` or `InstanceNotFound`."""
        instance = self._entry(service_id).instances.get(instance_id)
        if instance is None:
            raise CloudMapError("InstanceNotFound", f"Instance {instance_id} not found.")
        return instance

    def revision(self, service_id: str) -> int:
        """The service's `InstancesRevision`: rises with every registration change."""
        return self._entry(service_id).revision

    def discover(
        self,
        namespace_name: str,
        service_name: str,
        *,
        query: Mapping[str, str] | None = None,
        optional: Mapping[str, str] | None = None,
        health: HealthFilter = HealthFilter.ALL,
        max_results: int = 100,
    ) -> tuple[list[Instance], int]:
        """`DiscoverInstances`: the matching instances, shuffled, and the service's revision.

        `query` must all match; `optional` narrows the result only when some instance also
        matches it. The health filter applies to the instances `query` kept, so
        HEALTHY_OR_ELSE_ALL fails open when none of those is healthy.
        """
        if isinstance(max_results, bool) or not 1 <= max_results <= 1000:
            raise invalid("MaxResults must be from 1 to 1000.")
        entry = self._discovered(namespace_name, service_name)
        if query:
            # An items view's subset test runs in C: ~10x a Python loop over the keys.
            wanted = query.items()
            pool: Sequence[Instance] = [i for i in entry.all() if wanted <= i.attributes.items()]
            pool = _by_health(pool, health)
        elif health is HealthFilter.HEALTHY:
            pool = entry.healthy()
        elif health is HealthFilter.UNHEALTHY:
            pool = entry.unhealthy()
        elif health is HealthFilter.HEALTHY_OR_ELSE_ALL:
            pool = entry.healthy() or entry.all()
        else:
            pool = entry.all()
        if optional:
            extra = optional.items()
            narrowed = [i for i in pool if extra <= i.attributes.items()]
            pool = narrowed or pool
        return self._random.sample(pool, min(max_results, len(pool))), entry.revision

    def discover_revision(self, namespace_name: str, service_name: str) -> int:
        """`DiscoverInstancesRevision`."""
        return self._discovered(namespace_name, service_name).revision

    def _discovered(self, namespace_name: str, service_name: str) -> Entry:
        service = self.find_service(namespace_name, service_name)
        if service is None:
            if name_key(namespace_name) not in self._namespace_names():
                raise CloudMapError("NamespaceNotFound", f"Namespace {namespace_name} not found.")
            raise CloudMapError("ServiceNotFound", f"Service {service_name} not found.")
        return self._entry(service.id)

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(service_id)` after any change to a service's instances or their
        health (and after a service's records change or it is removed: `get_service` then
        raises); returns the function that stops watching. Callbacks run synchronously; one that
        raises is logged and the others still run."""
        self._watchers.append(callback)

        def unwatch() -> None:
            if callback in self._watchers:
                self._watchers.remove(callback)

        return unwatch

    def _notify(self, service_id: str) -> None:
        for callback in tuple(self._watchers):
            try:
                callback(service_id)
            except Exception:  # a watcher's bug must not fail the registration that ran it
                log.exception("discovery: a registry watcher failed on service %s", service_id)

    # -- writes ---------------------------------------------------------------------------------
    def register_instance(
        self,
        service_id: str,
        instance_id: str,
        attributes: Mapping[str, str],
        *,
        creator_request_id: str | None = None,
        owner: Owner = Owner.API,
    ) -> Operation:
        """Upsert an instance; returns the (already finished) REGISTER_INSTANCE operation.

        Re-registering keeps the instance's place and health and replaces its attributes.
        The API cannot take over an instance the supervisor runs (`ResourceInUse`)."""
        entry = self._entry(service_id)
        check_instance_id(instance_id)
        attrs = dict(attributes)
        check_attributes(entry.service, attrs)
        old = entry.instances.get(instance_id)
        if old is not None and old.owner is Owner.SUPERVISOR and owner is Owner.API:
            raise CloudMapError(
                "ResourceInUse", f"Instance {instance_id} is run by fogbank's supervisor."
            )
        instance = Instance(
            id=instance_id,
            service_id=service_id,
            attributes=attrs,
            health=old.health if old else initial_health(entry.service, attrs),
            owner=owner,
            creator_request_id=creator_request_id or (old.creator_request_id if old else None),
        )
        moved = old is None or old.attributes != attrs or old.owner is not owner
        targets = {"INSTANCE": instance_id, "SERVICE": service_id}
        operation = self.operations.make("REGISTER_INSTANCE", targets)
        changes: list[Change] = []
        if owner is Owner.API:
            changes += [instance_change(instance), *self.operations.changes(operation)]
        elif old is not None and old.owner is Owner.API:
            changes.append(("instance", instance_key(service_id, instance_id), None))
        if moved:
            changes.append(("revision", service_id, entry.revision + 1))
        self._save(changes)
        entry.put(instance)
        if owner is Owner.API:
            self.operations.add(operation)
        if moved:
            entry.revision += 1
            self._notify(service_id)
        return operation

    def deregister_instance(
        self, service_id: str, instance_id: str, *, owner: Owner | None = None
    ) -> Operation:
        """Remove an instance; returns the DEREGISTER_INSTANCE operation. With `owner=API`
        (the Cloud Map API) an instance the supervisor runs is refused (`ResourceInUse`)."""
        entry = self._entry(service_id)
        instance = self.get_instance(service_id, instance_id)
        if owner is Owner.API and instance.owner is Owner.SUPERVISOR:
            raise CloudMapError(
                "ResourceInUse", f"Instance {instance_id} is run by fogbank's supervisor."
            )
        targets = {"INSTANCE": instance_id, "SERVICE": service_id}
        operation = self.operations.make("DEREGISTER_INSTANCE", targets)
        changes: list[Change] = [("revision", service_id, entry.revision + 1)]
        if instance.owner is Owner.API:
            changes.append(("instance", instance_key(service_id, instance_id), None))
            changes += self.operations.changes(operation)
        self._save(changes)
        entry.remove(instance_id)
        entry.revision += 1
        if instance.owner is Owner.API:
            self.operations.add(operation)
        self._notify(service_id)
        return operation

    def ensure_service(self, namespace_name: str, service_name: str) -> Service:
        """The named service, created first when missing (a DNS_PRIVATE namespace with A and SRV
        records, TTL 10 s, MULTIVALUE) — how a supervised service's binding finds its registry."""
        found = self.find_service(namespace_name, service_name)
        if found is not None:
            return found
        return self._create_implicit(namespace_name, service_name)

    def set_health(self, service_id: str, instance_id: str, status: HealthStatus) -> None:
        """Set an instance's health (the supervisor's checks, or custom health through the API).
        The revision does not move: health is not a registration change."""
        entry = self._entry(service_id)
        instance = self.get_instance(service_id, instance_id)
        if instance.health is status:
            return
        updated = replace(instance, health=status)
        if updated.owner is Owner.API:
            self._save([instance_change(updated)])
        entry.put(updated)
        self._notify(service_id)

    def set_custom_health(self, service_id: str, instance_id: str, status: HealthStatus) -> None:
        """`UpdateInstanceCustomHealthStatus`: only for services with `HealthCheckCustomConfig`."""
        service = self.get_service(service_id)
        if service.custom_health_failure_threshold is None:
            raise CloudMapError(
                "CustomHealthNotFound", f"Service {service_id} has no HealthCheckCustomConfig."
            )
        self.set_health(service_id, instance_id, status)

    # -- tags and service attributes ------------------------------------------------------------
    def resource_for_arn(self, arn: str) -> Namespace | Service:
        """The namespace or service an ARN names (`ResourceNotFoundException` otherwise)."""
        kind, _, resource_id = arn.rpartition(":")[2].partition("/")
        if kind == "namespace" and resource_id in self._namespaces:
            namespace = self._namespaces[resource_id]
            if namespace.arn == arn:
                return namespace
        elif kind == "service" and resource_id in self._entries:
            service = self._entries[resource_id].service
            if service.arn == arn:
                return service
        raise CloudMapError("ResourceNotFoundException", f"Resource {arn} not found.")

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> None:
        self.resource_for_arn(arn)
        self._relabel(self.tags, arn, self.tags.merged(arn, tags))

    def untag_resource(self, arn: str, keys: Sequence[str]) -> None:
        self.resource_for_arn(arn)
        self._relabel(self.tags, arn, self.tags.without(arn, keys))

    def update_service_attributes(self, service_id: str, attributes: Mapping[str, str]) -> None:
        self._entry(service_id)
        book = self.service_attributes
        self._relabel(book, service_id, book.merged(service_id, attributes))

    def delete_service_attributes(self, service_id: str, keys: Sequence[str]) -> None:
        self._entry(service_id)
        book = self.service_attributes
        self._relabel(book, service_id, book.without(service_id, keys))

    def _relabel(self, book: LabelBook, owner: str, labels: Mapping[str, str]) -> None:
        self._save([book.change(owner, labels)])
        book.put(owner, labels)

    def _plan(
        self, namespaces: Sequence[NamespaceSpec], services: Sequence[DiscoveryServiceSpec]
    ) -> TemplatePlan:
        return template_changes(self, namespaces, services, self._implicit, self._clock())

    def _apply_plan(self, plan: TemplatePlan) -> list[str]:
        """Apply a template's plan; returns the ids of services whose records changed or went."""
        for namespace in plan.namespaces:
            dns = namespace.type is not NamespaceType.HTTP
            soa = self._soa_ttl.get(namespace.id, DEFAULT_SOA_TTL) if dns else None
            self._put_namespace(namespace, soa)
        changed: list[str] = []
        for service in plan.services:
            entry = self._entries.get(service.id)
            if entry is None:
                self._add_entry(service)
            elif entry.service != service:
                entry.service = service
                changed.append(service.id)
        for gone in plan.gone_services:
            self._drop_service(self._entries[gone.id])
        for namespace in plan.gone_namespaces:
            self._drop_namespace(namespace)
        self._index = None
        return changed

    def _create_implicit(self, namespace_name: str, service_name: str) -> Service:
        namespace_id = self._namespace_names().get(name_key(namespace_name))
        existing = self._namespaces.get(namespace_id) if namespace_id else None
        namespace, service = implicit_records(
            self, existing, namespace_name, service_name, self._clock()
        )
        if existing is None:
            self._put_namespace(namespace, DEFAULT_SOA_TTL)
            self._implicit.add(namespace.id)
        self._add_entry(service)
        self._implicit.add(service.id)
        return service


def _by_health(pool: Sequence[Instance], health: HealthFilter) -> Sequence[Instance]:
    if health is HealthFilter.ALL:
        return pool
    if health is HealthFilter.UNHEALTHY:
        return [i for i in pool if i.health is HealthStatus.UNHEALTHY]
    healthy = [i for i in pool if i.health is not HealthStatus.UNHEALTHY]
    if health is HealthFilter.HEALTHY_OR_ELSE_ALL and not healthy:
        return pool
    return healthy
