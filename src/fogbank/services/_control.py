"""What the node does with its services between deployments: the admin API's changes (a new
desired count, a forced new deployment, ECS `UpdateService`'s two knobs) and code reloads, laid
over the specs of the deployed app so that a later deploy does not silently undo them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from fogbank.model import ServiceSpec
from fogbank.services._status import ServiceStatus
from fogbank.services._supervisor import Supervisor


class ServiceControl:
    """Applies the deployed services to the supervisor, with the changes made since."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._deployed: Mapping[str, ServiceSpec] = {}
        self._counts: dict[str, int] = {}
        self._forced: dict[str, int] = {}
        """Forced deployments per service since it was deployed: added to its generation."""

    def specs(self) -> dict[str, ServiceSpec]:
        """The specs the supervisor runs: the deployed ones with this node's changes."""
        out = {}
        for name, spec in self._deployed.items():
            if name in self._counts:
                spec = replace(spec, desired_count=self._counts[name])
            if name in self._forced:
                spec = replace(spec, generation=spec.generation + self._forced[name])
            out[name] = spec
        return out

    async def deploy(self, services: Mapping[str, ServiceSpec]) -> None:
        """A new app: its specs replace the deployed ones; changes to services it no longer
        has are dropped."""
        self._deployed = dict(services)
        for changes in (self._counts, self._forced):
            for name in [n for n in changes if n not in services]:
                del changes[name]
        await self.supervisor.apply(self.specs())

    def service_statuses(self) -> list[ServiceStatus]:
        return self.supervisor.status()

    async def update_service(
        self, name: str, *, desired_count: int | None, force_new_deployment: bool
    ) -> ServiceStatus | None:
        if name not in self._deployed:
            return None
        if desired_count is not None:
            self._counts[name] = desired_count
        if force_new_deployment:
            self._forced[name] = self._forced.get(name, 0) + 1
        await self.supervisor.apply(self.specs())
        return self.supervisor.service_status(name)

    async def code_changed(self, names: Iterable[str]) -> None:
        """The code of these services changed on disk: roll each over to a new deployment."""
        for name in names:
            if name in self._deployed:
                self._forced[name] = self._forced.get(name, 0) + 1
        await self.supervisor.apply(self.specs())
