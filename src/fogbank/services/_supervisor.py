"""The supervisor: long-running services on this node, as ECS runs them on Fargate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from fogbank.discovery._registry import Registry
from fogbank.functions._logs import LogStore
from fogbank.model import ServiceSpec
from fogbank.services._ports import PidFiles, PortAllocator
from fogbank.services._rollout import RestartPolicy
from fogbank.services._scheduler import ServiceScheduler
from fogbank.services._status import ServiceStatus

log = logging.getLogger("fogbank")


class Supervisor:
    """Runs every service of the app: `apply` brings the running services in line with a set of
    specs (new ones start, removed ones stop, a new revision rolls out, a new count scales), and
    `stop` ends them all.

    Each instance runs as a process in a session of its own, with a free port, registered in the
    discovery registry under each of its service's bindings while it runs. Instance output goes to
    `logs` under the service's name, each line prefixed with the instance id.
    """

    def __init__(
        self,
        registry: Registry,
        logs: LogStore,
        *,
        zone: str,
        run_dir: Path,
        host: str = "127.0.0.1",
        restart: RestartPolicy | None = None,
    ) -> None:
        """`run_dir` holds a pid file per running instance (give each node its own); `zone` is
        the availability-zone label of instances whose spec names none."""
        self.registry = registry
        self.logs = logs
        self.zone = zone
        self.host = host
        self.restart = restart or RestartPolicy()
        self._ports = PortAllocator(host)
        self._pid_files = PidFiles(run_dir)
        self._schedulers: dict[str, ServiceScheduler] = {}
        self._started = False

    async def start(self) -> None:
        """Kill what a node that died without stopping left running on the same run directory."""
        if self._started:
            return
        self._started = True
        killed = await asyncio.to_thread(self._pid_files.reap)
        if killed:
            log.warning(
                "services: killed %d instance(s) left running by a node that did not stop",
                len(killed),
            )

    async def apply(self, services: Mapping[str, ServiceSpec]) -> None:
        """Bring the running services in line with `services` (by name)."""
        await self.start()
        removed = [name for name in self._schedulers if name not in services]
        for name, spec in services.items():
            scheduler = self._schedulers.get(name)
            if scheduler is None:
                scheduler = self._schedulers[name] = ServiceScheduler(
                    spec,
                    registry=self.registry,
                    logs=self.logs,
                    ports=self._ports,
                    pid_files=self._pid_files,
                    zone=self.zone,
                    host=self.host,
                    restart=self.restart,
                )
                scheduler.start()
            else:
                scheduler.apply(spec)
        await asyncio.gather(*(self._schedulers.pop(name).stop() for name in removed))

    async def stop(self) -> None:
        """Stop every instance of every service (SIGTERM, then SIGKILL after its stop timeout)
        and deregister it; returns when no instance process is left."""
        schedulers, self._schedulers = list(self._schedulers.values()), {}
        await asyncio.gather(*(s.stop() for s in schedulers))

    def status(self) -> list[ServiceStatus]:
        """A snapshot of every service, by name."""
        return [self._schedulers[name].status() for name in sorted(self._schedulers)]

    def service_status(self, name: str) -> ServiceStatus | None:
        scheduler = self._schedulers.get(name)
        return scheduler.status() if scheduler is not None else None

    def instance_pids(self, service: str) -> list[int]:
        """The pids of a service's running instances (empty for an unknown service)."""
        scheduler = self._schedulers.get(service)
        return scheduler.pids() if scheduler is not None else []
