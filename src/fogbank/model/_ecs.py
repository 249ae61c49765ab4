"""The Fargate shape: an `AWS::ECS::Service` running the container of an `AWS::ECS::TaskDefinition`.

fogbank runs no images, so a container becomes a local command: `EntryPoint` + `Command` run in a
directory that stands for the image. That directory is the task definition's
`Metadata: {Fogbank: {Directory: ./path}}` when given, else the container's `Image` when it is a
local path (`./services/catalog`); both are relative to the template. A relative
`WorkingDirectory` is taken inside that directory; an absolute one names a path inside the image
and is ignored. `PortMappings` are informational: every instance listens on the port fogbank gives
it in `PORT`. Clusters, launch types and network settings are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogbank.model._service import HealthCheck, ServiceSpec
from fogbank.model._service_arns import ECS_SERVICE, ECS_TASK_DEFINITION
from fogbank.model._service_props import MAX_DESIRED_COUNT, Registries, ServiceProps

DIRECTORY_HINT = "give the task definition Metadata: {Fogbank: {Directory: ./path}}"
_LOCAL_PREFIXES = ("./", "../", "/")


@dataclass(frozen=True, slots=True)
class _Container:
    """What a task definition contributes to a service: its one container, as a local command."""

    family: str
    command: tuple[str, ...]
    working_dir: Path
    environment: Mapping[str, str]
    health_check: HealthCheck
    stop_timeout_s: float


@dataclass
class EcsServices:
    """The ECS services of a template, and warnings about what they leave out."""

    built: list[tuple[ServiceProps, ServiceSpec]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_ecs(
    resources: Mapping[str, Mapping[str, Any]],
    physical_ids: Mapping[str, str],
    known: Registries,
    *,
    base_dir: Path,
    file: str,
) -> EcsServices:
    """Every `AWS::ECS::Service` in `resources`, with the task definition it runs."""
    out = EcsServices()
    tasks: dict[str, _Container] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == ECS_TASK_DEFINITION:
            props = ServiceProps(file, logical_id, resource["Properties"])
            meta = ServiceProps(file, logical_id, resource["Metadata"], prefix="Metadata")
            tasks[logical_id] = _task(props, meta, base_dir, out.warnings)
    used: set[str] = set()
    for logical_id, resource in resources.items():
        if resource["Type"] != ECS_SERVICE:
            continue
        props = ServiceProps(file, logical_id, resource["Properties"])
        meta = ServiceProps(file, logical_id, resource["Metadata"], prefix="Metadata")
        task_id = _task_of(props, physical_ids, tasks)
        used.add(task_id)
        out.built.append((props, _service(props, meta, tasks[task_id], known)))
    out.warnings.extend(
        f"{logical_id} ({ECS_TASK_DEFINITION}) is run by no {ECS_SERVICE}, so fogbank runs nothing"
        " for it"
        for logical_id in tasks
        if logical_id not in used
    )
    return out


def _task_of(props: ServiceProps, physical_ids: Mapping[str, str], tasks: Mapping[str, Any]) -> str:
    """The logical id of the task definition a service runs (by ARN, `family:revision`, family)."""
    reference = props.text("TaskDefinition", default="")
    if not reference:
        raise props.error("TaskDefinition", "TaskDefinition is required (for example !Ref Task)")
    family = reference.rsplit("/", 1)[-1].split(":", 1)[0]
    for logical_id, task in tasks.items():
        if reference in (physical_ids.get(logical_id), logical_id) or family == task.family:
            return logical_id
    raise props.error("TaskDefinition", f"task definition {reference} is not in this template")


def _service(
    props: ServiceProps, meta: ServiceProps, task: _Container, known: Registries
) -> ServiceSpec:
    name = props.service_name("ServiceName", props.logical_id)
    zone = meta.nested("Fogbank", "Zone")
    return ServiceSpec(
        name=name,
        command=task.command,
        working_dir=task.working_dir,
        environment=task.environment,
        logical_id=props.logical_id,
        desired_count=props.number("DesiredCount", default=1, low=0, high=MAX_DESIRED_COUNT),
        health_check=task.health_check,
        zone=None if zone is None else meta.text("Fogbank", "Zone"),
        deployment=props.deployment(),
        registries=props.registries(known, name),
        stop_timeout_s=task.stop_timeout_s,
        task_family=task.family,
    )


def _task(
    props: ServiceProps, meta: ServiceProps, base_dir: Path, warnings: list[str]
) -> _Container:
    containers = props.nested("ContainerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise props.error("ContainerDefinitions", "expected a list of container definitions")
    items = [
        props.child(f"ContainerDefinitions[{index}]", entry if isinstance(entry, dict) else {})
        for index, entry in enumerate(containers)
    ]
    essential = [item for item in items if item.nested("Essential") in (None, True, "true")]
    if not essential:
        raise props.error("ContainerDefinitions", "no container is essential; fogbank runs one")
    container = essential[0]
    label = container.text("Name", default=container.prefix)
    others = [item.text("Name", default=item.prefix) for item in items if item is not container]
    if others:
        warnings.append(
            f"{props.logical_id}: fogbank runs container {label} only; not run: {', '.join(others)}"
        )
    if container.nested("Secrets") is not None:
        warnings.append(
            f"{props.logical_id}: the Secrets of container {label} are not resolved by fogbank"
        )
    command = container.argv("EntryPoint") + container.argv("Command")
    if not command:
        raise container.error(
            "Command", "the container needs a Command: fogbank cannot run the image's own"
        )
    directory = _directory(container, meta, base_dir)
    inside = container.text("WorkingDirectory", default="")
    if inside and not inside.startswith("/"):
        directory = container.directory("WorkingDirectory", inside, directory)
    return _Container(
        family=props.text("Family", default=props.logical_id),
        command=command,
        working_dir=directory,
        environment=container.environment("Environment"),
        health_check=container.health_check("HealthCheck", whole_seconds=True),
        stop_timeout_s=float(
            container.number("StopTimeout", default=30, low=2, high=120, unit=" seconds")
        ),
    )


def _directory(container: ServiceProps, meta: ServiceProps, base_dir: Path) -> Path:
    """The local directory standing for the container's image."""
    if meta.nested("Fogbank", "Directory") is not None:
        relative = meta.text("Fogbank", "Directory")
        return meta.directory("Fogbank.Directory", relative, base_dir)
    image = container.text("Image", default="")
    if image == "." or image.startswith(_LOCAL_PREFIXES):
        return container.directory("Image", image, base_dir)
    raise container.error(
        "Image",
        f"image {image or '(none)'} is not a local directory: {DIRECTORY_HINT},"
        " or make Image a local path (./path)",
    )
