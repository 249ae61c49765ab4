"""The scheduler of one service: it starts, checks, registers, replaces and stops its instances.

One loop per service wakes on every event (an instance started, exited, changed health; a new
spec) and applies `plan`. Exits and failed checks are acted on where they are seen, before the
loop runs: an instance that dies is deregistered at once, one that fails a check is UNHEALTHY in
the registry at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fogbank.discovery._records import IPV4, PORT, ZONE, CloudMapError, HealthStatus, Owner
from fogbank.discovery._registry import Registry
from fogbank.functions._logs import LogStore
from fogbank.model import HealthCheckKind, ServiceSpec
from fogbank.services._health import HealthChange, HealthTracker, probe
from fogbank.services._instance import (
    InstanceProcess,
    InstanceState,
    LaunchError,
    describe_exit,
    environment_for,
    new_instance_id,
)
from fogbank.services._ports import PidFiles, PortAllocator
from fogbank.services._rollout import Backoff, Member, RestartPolicy, Rollout, plan, steady
from fogbank.services._status import InstanceStatus, ServiceStatus

log = logging.getLogger("fogbank")

# Attributes ECS gives the Cloud Map instances of its tasks, beside Cloud Map's own.
SERVICE_NAME = "ECS_SERVICE_NAME"
TASK_FAMILY = "ECS_TASK_DEFINITION_FAMILY"


@dataclass(eq=False)
class _Member:
    process: InstanceProcess
    tracker: HealthTracker
    started: float
    """Loop time of the start."""
    started_at: float
    """Wall-clock time of the start."""
    replace: bool = False
    stopping: bool = False
    exited: bool = False
    registered: list[str] = field(default_factory=list)
    """Registry service ids the instance is registered in."""


class ServiceScheduler:
    """Keeps one service's desired count of instances healthy, through deployments."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        registry: Registry,
        logs: LogStore,
        ports: PortAllocator,
        pid_files: PidFiles,
        zone: str,
        host: str,
        restart: RestartPolicy,
    ) -> None:
        self.name = spec.name
        self.rollout = Rollout(spec)
        self.backoff = Backoff(restart)
        self.restarts = 0
        """Instances that failed (exited or failed their checks) and were replaced."""
        self._registry = registry
        self._logs = logs
        self._ports = ports
        self._pid_files = pid_files
        self._zone = zone
        self._host = host
        self._members: dict[str, _Member] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._reported: set[str] = set()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._note(f"deploying revision {self.rollout.target.revision}")
        self._loop_task = asyncio.create_task(self._run(), name=f"service {self.name}")

    def apply(self, spec: ServiceSpec) -> None:
        if self.rollout.apply(spec):
            self.backoff.clear()
            self._note(f"deploying revision {spec.revision}")
        self._wake.set()

    async def stop(self) -> None:
        """Stop every instance (SIGTERM, SIGKILL after the stop timeout) and deregister it."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for member in list(self._members.values()):
            self._begin_stop(member)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for member in list(self._members.values()):  # only after a bug: leave nothing running
            member.process.signal(signal.SIGKILL)
            self._forget(member)

    # -- the loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                delay = self._reconcile(loop.time())
            except Exception:
                # A bug here must not end the supervision of the service for good.
                log.exception("service %s: scheduling failed; trying again in 1 s", self.name)
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _reconcile(self, now: float) -> float | None:
        """Start and stop what `plan` says; returns when to look again without an event."""
        wake_in: list[float] = []
        policy = self.backoff.policy
        if self.backoff.delay > policy.initial_s:
            for m in self._live():
                since = m.tracker.healthy_since
                if since is not None and now - since >= policy.reset_after_s:
                    self.backoff.reset()
                elif since is not None:
                    wake_in.append(since + policy.reset_after_s - now)
        views = [self._view(m) for m in self._live()]
        target = self.rollout.target
        is_steady = steady(views, desired=target.desired_count, target=target.revision)
        if is_steady and self.rollout.reached_steady():
            self._note(self.rollout.reason)
        decided = plan(
            views,
            desired=target.desired_count,
            target=target.revision,
            maximum_percent=target.deployment.maximum_percent,
            minimum_healthy_percent=target.deployment.minimum_healthy_percent,
            can_start=self.backoff.ready(now),
        )
        for instance_id in decided.stop:
            self._begin_stop(self._members[instance_id])
        for _ in range(decided.start):
            self._launch(target, now)
        if not self.backoff.ready(now):
            wake_in.append(self.backoff.not_before - now)
        return min(wake_in) if wake_in else None

    def _live(self) -> list[_Member]:
        return [m for m in self._members.values() if not m.exited]

    @staticmethod
    def _view(m: _Member) -> Member:
        return Member(
            id=m.process.id,
            revision=m.process.revision,
            started=m.started,
            healthy=m.tracker.healthy and m.process.state is InstanceState.RUNNING,
            replace=m.replace,
            stopping=m.stopping,
        )

    # -- one instance -----------------------------------------------------------------------------
    def _launch(self, spec: ServiceSpec, now: float) -> None:
        instance_id = new_instance_id()
        try:
            port = self._ports.allocate()
        except OSError as exc:
            wait = self._count_failure()
            self._note(f"cannot start an instance: {exc}; next start in {wait:g} s", warn=True)
            return
        prefix = f"[{instance_id}] ".encode()
        process = InstanceProcess(
            spec,
            instance_id=instance_id,
            port=port,
            env=environment_for(spec, instance_id=instance_id, port=port, zone=self._zone_of(spec)),
            on_line=lambda line: self._logs.append(self.name, prefix + line + b"\n"),
        )
        member = _Member(process, HealthTracker(spec.health_check, now), now, time.time())
        self._members[instance_id] = member
        self._spawn_task(self._life(member))

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _life(self, member: _Member) -> None:
        process = member.process
        try:
            await process.spawn()
        except LaunchError as exc:
            member.exited = True
            self._failed(member, str(exc))
            self._forget(member)
            return
        try:
            await self._supervise(member)
        except Exception:
            log.exception("service %s: instance %s: supervisor error", self.name, process.id)
            process.signal(signal.SIGKILL)
            raise
        finally:
            self._pid_files.remove(process.id)
            self._forget(member)

    async def _supervise(self, member: _Member) -> None:
        process = member.process
        assert process.pid is not None
        self._pid_files.write(process.id, process.pid)
        self._note(
            f"instance {process.id} started: pid {process.pid}, port {process.port}, "
            f"revision {process.revision}"
        )
        if member.stopping:  # stopped while it was being started
            self._spawn_task(process.terminate(process.spec.stop_timeout_s))
        else:
            self._register(member)
        checks = None
        if process.spec.health_check.kind is not HealthCheckKind.NONE:
            checks = asyncio.create_task(self._check(member))
        self._wake.set()
        returncode = await process.wait()
        member.exited = True
        self._deregister(member)
        if checks is not None:
            checks.cancel()
        wait = None if member.stopping else self._count_failure()
        await process.finish()
        if member.stopping:
            self._note(f"instance {process.id} stopped ({describe_exit(returncode)})")
            return
        self._report(member, f"ended: {process.exit_reason(returncode)}", wait)

    async def _check(self, member: _Member) -> None:
        process, tracker = member.process, member.tracker
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tracker.next_delay())
            failure = await probe(
                process.spec.health_check,
                self._host,
                process.port,
                process.env,
                process.spec.working_dir,
            )
            change = tracker.record(failure, loop.time())
            if change is HealthChange.NONE or member.exited or member.stopping:
                continue
            self._set_health(member)
            if change is HealthChange.UNHEALTHY:
                self._note(f"instance {process.id} is UNHEALTHY: {failure}", warn=True)
            elif change is HealthChange.HEALTHY:
                self._note(f"instance {process.id} is HEALTHY")
            else:
                member.replace = True
                why = f"failed {tracker.failures} health checks in a row (last: {failure})"
                self._report(member, why, self._count_failure())
                self._wake.set()
                return
            self._wake.set()

    def _begin_stop(self, member: _Member) -> None:
        if member.stopping:
            return
        member.stopping = True
        self._deregister(member)
        if member.process.pid is not None and not member.exited:
            self._spawn_task(member.process.terminate(member.process.spec.stop_timeout_s))

    def _forget(self, member: _Member) -> None:
        if self._members.pop(member.process.id, None) is not None:
            self._ports.release(member.process.port)
            self._wake.set()

    # -- failures ---------------------------------------------------------------------------------
    def _count_failure(self) -> float:
        """Count a failed instance against the backoff and the deployment; returns the wait
        before its replacement starts."""
        self.restarts += 1
        return self.backoff.failed(asyncio.get_running_loop().time())

    def _failed(self, member: _Member, why: str) -> None:
        self._report(member, f"could not start: {why}", self._count_failure())

    def _report(self, member: _Member, why: str, wait: float | None) -> None:
        """One line per failed instance, in the service's log and the node's."""
        text = f"instance {member.process.id} {why}"
        if wait is not None:
            text += f"; next start in {wait:g} s"
        self._note(text, warn=True)
        if self.rollout.failed(member.process.revision, why):
            self.backoff.clear()  # the rollback starts at once
            self._note(self.rollout.reason, warn=True)

    def _note(self, text: str, *, warn: bool = False) -> None:
        self._logs.append(self.name, f"[fogbank] {text}\n".encode())
        if warn:
            log.warning("service %s: %s", self.name, text)
        else:
            log.info("service %s: %s", self.name, text)

    # -- the registry -----------------------------------------------------------------------------
    def _zone_of(self, spec: ServiceSpec) -> str:
        return spec.zone or self._zone

    def _register(self, member: _Member) -> None:
        process = member.process
        spec = process.spec
        attributes = {
            IPV4: self._host,
            PORT: str(process.port),
            ZONE: self._zone_of(spec),
            SERVICE_NAME: spec.name,
        }
        if spec.task_family:
            attributes[TASK_FAMILY] = spec.task_family
        for binding in spec.registries:
            try:
                service = self._registry.ensure_service(binding.namespace, binding.service)
                self._registry.register_instance(
                    service.id, process.id, attributes, owner=Owner.SUPERVISOR
                )
            except CloudMapError as exc:
                where = f"{binding.service}.{binding.namespace}"
                if where not in self._reported:  # once per binding, not once per instance
                    self._reported.add(where)
                    self._note(f"cannot register in {where}: {exc.code}: {exc.message}", warn=True)
                continue
            member.registered.append(service.id)
        self._set_health(member)

    def _set_health(self, member: _Member) -> None:
        health = HealthStatus.HEALTHY if member.tracker.healthy else HealthStatus.UNHEALTHY
        for service_id in member.registered:
            with contextlib.suppress(CloudMapError):  # deregistered through the API meanwhile
                self._registry.set_health(service_id, member.process.id, health)

    def _deregister(self, member: _Member) -> None:
        registered, member.registered = member.registered, []
        for service_id in registered:
            with contextlib.suppress(CloudMapError):
                self._registry.deregister_instance(service_id, member.process.id)

    # -- reading ----------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return [m.process.pid for m in self._members.values() if m.process.pid and not m.exited]

    def status(self) -> ServiceStatus:
        instances = tuple(
            InstanceStatus(
                id=m.process.id,
                pid=m.process.pid,
                port=m.process.port,
                revision=m.process.revision,
                state=m.process.state,
                health=m.tracker.health,
                health_reason="" if m.tracker.healthy else m.tracker.reason,
                started_at=m.started_at,
                replacing=m.replace,
            )
            for m in self._members.values()
        )
        target = self.rollout.target
        return ServiceStatus(
            name=self.name,
            revision=target.revision,
            desired=target.desired_count,
            running=sum(i.state is InstanceState.RUNNING for i in instances),
            healthy=sum(self._view(m).healthy for m in self._live()),
            rollout=self.rollout.state,
            rollout_reason=self.rollout.reason,
            failed_instances=self.rollout.failures,
            restarts=self.restarts,
            instances=instances,
        )
