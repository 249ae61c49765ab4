"""What the node does with its services between deployments: the admin API's changes (a new
desired count, a forced new deployment, ECS `UpdateService`'s two knobs) and code reloads, laid
over the specs of the deployed app so that a later deploy does not silently undo them.

A desired count set through the admin API outlives a restart of the node, as an ECS service's
does its stack: it is kept in the state directory with the template's own count at the time, and
applied again as long as the template still says that count. Change `DesiredCount` in the
template and the template wins, as a CloudFormation update of that property would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from fogbank.model import ServiceSpec
from fogbank.services._status import ServiceStatus
from fogbank.services._supervisor import Supervisor

log = logging.getLogger("fogbank.services")


class ServiceControl:
    """Applies the deployed services to the supervisor, with the changes made since."""

    def __init__(self, supervisor: Supervisor, counts_file: Path | None = None) -> None:
        """`counts_file` keeps the admin API's desired counts across restarts (None: memory)."""
        self.supervisor = supervisor
        self._deployed: Mapping[str, ServiceSpec] = {}
        self._counts_file = counts_file
        self._counts: dict[str, tuple[int, int]] = _load(counts_file)
        """Service -> (desired count set through the admin API, the template's count then)."""
        self._forced: dict[str, int] = {}
        """Forced deployments per service since it was deployed: added to its generation."""

    def specs(self) -> dict[str, ServiceSpec]:
        """The specs the supervisor runs: the deployed ones with this node's changes."""
        out = {}
        for name, spec in self._deployed.items():
            if name in self._counts:
                spec = replace(spec, desired_count=self._counts[name][0])
            if name in self._forced:
                spec = replace(spec, generation=spec.generation + self._forced[name])
            out[name] = spec
        return out

    async def deploy(self, services: Mapping[str, ServiceSpec]) -> None:
        """A new app: its specs replace the deployed ones. Changes to services it no longer has
        are dropped, and so is a desired count whose service's template count changed."""
        self._deployed = dict(services)
        stale = [
            name
            for name, (_, template_count) in self._counts.items()
            if name not in services or services[name].desired_count != template_count
        ]
        for name in stale:
            del self._counts[name]
        for name in [n for n in self._forced if n not in services]:
            del self._forced[name]
        if stale:
            self._save()
        await self.supervisor.apply(self.specs())

    def service_statuses(self) -> list[ServiceStatus]:
        return self.supervisor.status()

    async def update_service(
        self, name: str, *, desired_count: int | None, force_new_deployment: bool
    ) -> ServiceStatus | None:
        deployed = self._deployed.get(name)
        if deployed is None:
            return None
        if desired_count is not None:
            self._counts[name] = (desired_count, deployed.desired_count)
            self._save()
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

    def _save(self) -> None:
        path = self._counts_file
        if path is None:
            return
        doc = {
            name: {"desiredCount": count, "templateDesiredCount": template}
            for name, (count, template) in sorted(self._counts.items())
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(partial, path)  # a crash mid-write leaves the previous file whole


def _load(path: Path | None) -> dict[str, tuple[int, int]]:
    if path is None or not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
        counts = {
            str(name): (int(entry["desiredCount"]), int(entry["templateDesiredCount"]))
            for name, entry in doc.items()
        }
        if any(count < 0 for count, _ in counts.values()):
            raise ValueError("a negative desiredCount")
        return counts
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        aside = path.with_name(path.name + ".unreadable")
        log.warning(
            "%s: unreadable (%s); kept as %s, the services start with the template's counts",
            path,
            exc,
            aside.name,
        )
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        return {}
