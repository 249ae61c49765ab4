"""Long-running services and Cloud Map resources, built from a template's resolved resources.

A service is declared as fogbank's own `Fogbank::Service` (a command in a directory; SAM passes
unknown types through untouched) or in the Fargate shape, an `AWS::ECS::Service` running an
`AWS::ECS::TaskDefinition` (`_ecs`). Namespaces and discovery services come from
`AWS::ServiceDiscovery::*` (`_cloudmap_resources`), and so do instances that fogbank does not run. Checks that span resources are made here:
service names are unique and differ from function names (logs share one namespace), and every
registry binding names a discovery service of the template.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fogbank.model._cloudmap_resources import (
    read_discovery_instances,
    read_discovery_services,
    read_namespaces,
)
from fogbank.model._ecs import read_ecs
from fogbank.model._intrinsics import Resolved
from fogbank.model._service import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    NamespaceSpec,
    ServiceSpec,
)
from fogbank.model._service_arns import (
    DISCOVERY_INSTANCE,
    DISCOVERY_SERVICE,
    ECS_CLUSTER,
    ECS_SERVICE,
    ECS_TASK_DEFINITION,
    FOGBANK_SERVICE,
    NAMESPACE_TYPES,
)
from fogbank.model._service_props import MAX_DESIRED_COUNT, Registries, ServiceProps

DEFAULT_STOP_TIMEOUT_S = 30.0

SERVICE_PREFIXES = ("Fogbank::", "AWS::ECS::", "AWS::ServiceDiscovery::")
"""Resource types this loader reads, or warns about itself."""
_SERVED = frozenset(
    (
        FOGBANK_SERVICE,
        ECS_SERVICE,
        ECS_TASK_DEFINITION,
        ECS_CLUSTER,
        DISCOVERY_SERVICE,
        DISCOVERY_INSTANCE,
    )
) | frozenset(NAMESPACE_TYPES)


@dataclass(frozen=True, slots=True)
class LoadedServices:
    """What the service loader built, and one warning per thing it accepted but does not serve."""

    services: tuple[ServiceSpec, ...] = ()
    namespaces: tuple[NamespaceSpec, ...] = ()
    discovery_services: tuple[DiscoveryServiceSpec, ...] = ()
    discovery_instances: tuple[DiscoveryInstanceSpec, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def cloud_map_ids(self) -> frozenset[str]:
        """The ids of the template's discovery services (what private integrations may name)."""
        return frozenset(service.service_id for service in self.discovery_services)


def build_services(
    resolved: Resolved,
    *,
    base_dir: Path,
    file: str,
    function_names: Set[str],
) -> LoadedServices:
    """Build every service, namespace and discovery service of a resolved (post-SAM) template.

    Directories are relative to `base_dir`, the template's directory. `function_names` are the
    template's function names, which no service may take. Raises `TemplateError` naming the file,
    resource and property.
    """
    resources = resolved.resources
    namespaces = read_namespaces(resources, file=file)
    discovery = read_discovery_services(resources, namespaces, file=file)
    instances = read_discovery_instances(resources, discovery, file=file)
    known = Registries(namespaces, discovery)
    built: list[tuple[ServiceProps, ServiceSpec]] = []
    for logical_id, resource in resources.items():
        if resource["Type"] == FOGBANK_SERVICE:
            props = ServiceProps(file, logical_id, resource["Properties"])
            built.append((props, _fogbank_service(props, known, base_dir)))
    ecs = read_ecs(resources, resolved.physical_ids, known, base_dir=base_dir, file=file)
    built.extend(ecs.built)
    _check_names(built, function_names)
    return LoadedServices(
        services=tuple(spec for _, spec in built),
        namespaces=tuple(namespaces.values()),
        discovery_services=tuple(discovery.values()),
        discovery_instances=tuple(instances.values()),
        warnings=(*ecs.warnings, *_unserved(resources, _SERVED)),
    )


def _fogbank_service(props: ServiceProps, known: Registries, base_dir: Path) -> ServiceSpec:
    name = props.service_name("ServiceName", props.logical_id)
    command = props.argv("Command")
    if not command:
        raise props.error("Command", "Command is required: a list of arguments or a shell string")
    directory = props.text("WorkingDirectory", default=".")
    zone = props.nested("Zone")
    return ServiceSpec(
        name=name,
        command=command,
        working_dir=props.directory("WorkingDirectory", directory, base_dir),
        environment=props.environment("Environment"),
        logical_id=props.logical_id,
        desired_count=props.number("DesiredCount", default=1, low=0, high=MAX_DESIRED_COUNT),
        health_check=props.health_check("HealthCheck", whole_seconds=False),
        zone=None if zone is None else props.text("Zone"),
        deployment=props.deployment(),
        registries=props.registries(known, name),
        stop_timeout_s=props.seconds(
            "StopTimeout", default=DEFAULT_STOP_TIMEOUT_S, low=0, high=120
        ),
    )


def _check_names(built: list[tuple[ServiceProps, ServiceSpec]], functions: Set[str]) -> None:
    taken: dict[str, str] = {}
    for props, spec in built:
        if spec.name in functions:
            raise props.error(
                "ServiceName",
                f"{spec.name} is also a function's name; services and functions share log names",
            )
        if spec.name in taken:
            raise props.error(
                "ServiceName", f"service name {spec.name} is already used by {taken[spec.name]}"
            )
        taken[spec.name] = spec.logical_id


def _unserved(resources: Mapping[str, Mapping[str, Any]], served: Set[str]) -> list[str]:
    warnings = []
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if not kind.startswith(SERVICE_PREFIXES) or kind in served:
            continue
        warnings.append(f"{logical_id} ({kind}) is not served by fogbank")
    return warnings
