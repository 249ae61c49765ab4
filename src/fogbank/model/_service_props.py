"""Reading a long-running service's properties: what `Fogbank::Service` and the ECS shape share.

Commands, seconds, health checks, deployment settings and registry bindings are spelt the same
way (ECS's names) in both forms; `ServiceProps` reads them with checks that name the file,
resource and property, as `Props` does for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fogbank._errors import TemplateError
from fogbank.model._intrinsics import text
from fogbank.model._props import Props
from fogbank.model._service import (
    DeploymentConfig,
    DiscoveryServiceSpec,
    HealthCheck,
    HealthCheckKind,
    NamespaceSpec,
    RegistryBinding,
)
from fogbank.model._service_arns import CLOUD_MAP_SERVICE_ARN

SHELL = ("/bin/sh", "-c")
MAX_DESIRED_COUNT = 100
"""More instances than a laptop should run; ECS itself allows thousands."""
# ECS's rule for service names; names also name log files, so they must be path-safe.
_SERVICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


@dataclass(frozen=True, slots=True)
class Registries:
    """The template's Cloud Map resources, for resolving a service's registry bindings."""

    namespaces: Mapping[str, NamespaceSpec]
    """By logical id."""
    services: Mapping[str, DiscoveryServiceSpec]
    """By logical id."""

    def binding(self, reference: str) -> RegistryBinding | None:
        """The binding for a discovery service's ARN or id, or None if the template has none."""
        match = CLOUD_MAP_SERVICE_ARN.fullmatch(reference)
        service_id = match["id"] if match else reference
        for service in self.services.values():
            if service.service_id == service_id:
                namespace = self.namespaces[service.namespace_logical_id]
                return RegistryBinding(namespace.name, service.name)
        return None

    def namespace_name(self, reference: str) -> str:
        """A namespace's name from its name, id or ARN (ids and ARNs of template namespaces)."""
        for namespace in self.namespaces.values():
            if reference.rsplit("/", 1)[-1] == namespace.namespace_id:
                return namespace.name
        return reference


@dataclass
class ServiceProps(Props):
    """One service resource's resolved properties, read with ECS's names and ranges."""

    prefix: str = ""
    """Where these properties sit in the resource (`ContainerDefinitions[0]`), for errors."""

    def error(self, prop: str, message: str) -> TemplateError:
        return super().error(self._path(prop), message)

    def child(self, prop: str, values: Mapping[str, Any]) -> ServiceProps:
        """A list item's properties (`prop` is its path, `Environment[0]`), read the same way."""
        return ServiceProps(self.file, self.logical_id, values, prefix=self._path(prop))

    def _path(self, prop: str) -> str:
        return f"{self.prefix}.{prop}" if self.prefix else prop

    def service_name(self, key: str, logical_id: str) -> str:
        name = self.text(key, default=logical_id)
        if not _SERVICE_NAME.fullmatch(name):
            raise self.error(
                key, f"service name {name!r} must be 1-255 letters, digits, - or _ (as in ECS)"
            )
        return name

    def argv(self, *keys: str) -> tuple[str, ...]:
        """A command: a list of arguments, or one string run by `/bin/sh -c`."""
        value, prop = self.nested(*keys), ".".join(keys)
        if value is None:
            return ()
        if isinstance(value, str):
            return (*SHELL, value)
        if not isinstance(value, list):
            raise self.error(prop, f"expected a list of arguments or a string, got {value!r}")
        try:
            return tuple(text(item) for item in value)
        except TypeError:
            raise self.error(prop, f"expected a list of arguments, got {value!r}") from None

    def health_argv(self, *keys: str, ecs: bool) -> tuple[str, ...]:
        """A health check command: ECS's `["CMD-SHELL", "…"]` or `["CMD", …]` (required when `ecs`),
        else a plain list or string as `argv` reads it."""
        command, prop = self.argv(*keys), ".".join(keys)
        value = self.nested(*keys)
        head = command[0] if isinstance(value, list) and command else ""
        if head == "CMD-SHELL" and len(command) == 2:
            return (*SHELL, command[1])
        if head == "CMD" and len(command) > 1:
            return command[1:]
        if ecs or head in ("CMD", "CMD-SHELL"):
            raise self.error(
                prop, f'expected ["CMD-SHELL", "command"] or ["CMD", "arg", ...], got {value!r}'
            )
        if not command:
            raise self.error(prop, "the health check command is empty")
        return command

    def seconds(self, *keys: str, default: float, low: float, high: float) -> float:
        """A duration in seconds; fractions allowed (only whole seconds reach here from ECS)."""
        value, prop = self.nested(*keys), ".".join(keys)
        if value is None:
            return default
        try:
            number = float(text(value))
        except (TypeError, ValueError):
            raise self.error(prop, f"{prop} must be a number of seconds, got {value!r}") from None
        if not low <= number <= high:
            raise self.error(prop, f"{prop} {number:g} is outside {low:g}-{high:g} seconds")
        return number

    def health_check(self, *keys: str, whole_seconds: bool) -> HealthCheck:
        """A `HealthCheck` block: `Path` (HTTP, fogbank's) or `Command`, with ECS's timings.

        `whole_seconds` applies ECS's ranges; otherwise fractions down to 0.05 s are allowed,
        so that tests and demos need not wait whole seconds.
        """
        if self.nested(*keys) is None:
            return HealthCheck()
        if not isinstance(self.nested(*keys), dict):
            raise self.error(".".join(keys), "expected a mapping")
        path = None if whole_seconds else self.nested(*keys, "Path")
        has_command = self.nested(*keys, "Command") is not None
        if path is not None and has_command:
            raise self.error(".".join(keys), "give either Path or Command, not both")
        if path is None and not has_command:
            wanted = "Command" if whole_seconds else "Path or Command"
            raise self.error(".".join(keys), f"a health check needs {wanted}")

        def timing(key: str, default: float, low: float, high: float) -> float:
            if whole_seconds:
                whole = self.number(
                    *keys, key, default=int(default), low=int(low), high=int(high), unit=" seconds"
                )
                return float(whole)
            return self.seconds(*keys, key, default=default, low=min(low, 0.05), high=high)

        common: dict[str, Any] = {
            "interval_s": timing("Interval", 30, 5, 300),
            "timeout_s": timing("Timeout", 5, 2, 120),
            "start_period_s": timing("StartPeriod", 0, 0, 300),
            "retries": self.number(*keys, "Retries", default=3, low=1, high=10),
            "healthy_threshold": self.number(*keys, "HealthyThreshold", default=2, low=1, high=10),
        }
        if path is not None:
            route = self.text(*keys, "Path")
            if not route.startswith("/"):
                raise self.error(".".join((*keys, "Path")), f"path {route} must start with /")
            return HealthCheck(HealthCheckKind.HTTP, path=route, **common)
        command = self.health_argv(*keys, "Command", ecs=whole_seconds)
        return HealthCheck(HealthCheckKind.COMMAND, command=command, **common)

    def deployment(self) -> DeploymentConfig:
        """ECS's `DeploymentConfiguration`, circuit breaker included."""
        key = "DeploymentConfiguration"
        breaker = (key, "DeploymentCircuitBreaker")
        given = self.nested(*breaker) is not None
        maximum = self.number(key, "MaximumPercent", default=200, low=100, high=1000, unit="%")
        minimum = self.number(key, "MinimumHealthyPercent", default=100, low=0, high=100, unit="%")
        if maximum == 100 and minimum == 100:
            raise self.error(
                key, "MaximumPercent 100 with MinimumHealthyPercent 100 leaves no room to replace"
            )
        defaults = DeploymentConfig()
        return DeploymentConfig(
            maximum_percent=maximum,
            minimum_healthy_percent=minimum,
            circuit_breaker=self.flag(*breaker, "Enable") if given else defaults.circuit_breaker,
            rollback=self.flag(*breaker, "Rollback") if given else defaults.rollback,
        )

    def flag(self, *keys: str) -> bool:
        value = self.nested(*keys)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(".".join(keys), f"expected true or false, got {value!r}")

    def registries(self, known: Registries, default_name: str) -> tuple[RegistryBinding, ...]:
        """`ServiceRegistries` (ECS: discovery services of the template, by ARN or id) plus the
        short form `Discovery: {Namespace, Name}` (fogbank's: any namespace, by name)."""
        bindings: list[RegistryBinding] = []
        entries = self.nested("ServiceRegistries") or []
        if not isinstance(entries, list):
            raise self.error("ServiceRegistries", f"expected a list, got {entries!r}")
        for index, entry in enumerate(entries):
            key = f"ServiceRegistries[{index}].RegistryArn"
            arn = entry.get("RegistryArn") if isinstance(entry, dict) else None
            if not isinstance(arn, str):
                raise self.error(key, f"expected a discovery service's ARN, got {arn!r}")
            binding = known.binding(arn)
            if binding is None:
                raise self.error(key, f"{arn} names no discovery service in this template")
            bindings.append(binding)
        if self.nested("Discovery") is not None:
            namespace = known.namespace_name(self.text("Discovery", "Namespace", default=""))
            if not namespace:
                raise self.error("Discovery.Namespace", "the namespace's name is required")
            bindings.append(
                RegistryBinding(namespace, self.text("Discovery", "Name", default=default_name))
            )
        return tuple(dict.fromkeys(bindings))

    def directory(self, key: str, relative: str, base_dir: Path) -> Path:
        """A directory given relative to the template's directory; it must exist."""
        path = (base_dir / relative).resolve()
        if not path.is_dir():
            problem = "is not a directory" if path.exists() else "does not exist"
            raise self.error(key, f"directory {relative} {problem}")
        return path

    def environment(self, *keys: str) -> dict[str, str]:
        """Environment variables: a map (`{NAME: value}`) or ECS's list (`[{Name, Value}]`)."""
        value, prop = self.nested(*keys), ".".join(keys)
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(name): self.text(*keys, str(name)) for name in value}
        if not isinstance(value, list):
            raise self.error(
                prop, f"expected a mapping or a list of {{Name, Value}}, got {value!r}"
            )
        variables: dict[str, str] = {}
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or "Name" not in entry:
                raise self.error(f"{prop}[{index}]", f"expected {{Name, Value}}, got {entry!r}")
            pair = self.child(f"{prop}[{index}]", entry)
            variables[pair.text("Name")] = pair.text("Value", default="")
        return variables
