"""Load balancing across a discovered service's instances: which instance takes a request.

The gateway reads the registry on every request to a discovered service, so what it reads is kept
ready: per service, the eligible instances (healthy or UNKNOWN, with an address) and the subset in
the gateway's own zone. Both are rebuilt when the registry reports a change (`Registry.watch` bumps
one counter; a pool or host decision made under an older count is stale), never per request.

Choice is round robin within the chosen set: the gateway's zone when it has any instance in
rotation, else every zone. Outlier ejection follows Envoy's `consecutive_gateway_failure`: after
`consecutive_failures` connection failures in a row an instance leaves rotation for
`base_ejection_s` times the number of times it has been ejected (capped at `max_ejection_s`); the count
of ejections decays by one for every `base_ejection_s` spent back in rotation. An ejection that
would leave no instance in rotation does not happen. Ejection state lives in this node's memory;
an instance that leaves the healthy set (its health check fails) forgets it, since passing its
checks again is a stronger signal than any old failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fogbank.discovery._records import CloudMapError

if TYPE_CHECKING:
    from fogbank.discovery._registry import Registry

log = logging.getLogger("fogbank.gateway")

_MAX_HOSTS = 1024
"""Host decisions kept (a URI host filled from a path parameter could otherwise grow it)."""


@dataclass(frozen=True, slots=True)
class Ejection:
    """How the balancer treats instances that fail to connect (Envoy's outlier detection)."""

    consecutive_failures: int = 3
    """Connection failures in a row (a success resets the count) that eject an instance."""
    base_ejection_s: float = 10.0
    """The first ejection's length; each repeated ejection adds as much again."""
    max_ejection_s: float = 300.0
    """The longest an instance stays ejected."""


@dataclass(slots=True, eq=False)
class Target:
    """One instance as the balancer sees it: where it listens and how it has been doing."""

    service_id: str
    instance_id: str
    authority: str
    """`ip:port` (`[ip]:port` for IPv6), what replaces the host in the URL sent."""
    zone: str | None
    host: str = ""
    """The address alone (no brackets), which the connection is made to."""
    port: int = 0
    failures: int = 0
    """Connection failures in a row."""
    ejected_until: float = 0.0
    """Clock time at which an ejected instance returns to rotation (0: never ejected)."""
    ejections: int = 0
    """The ejection multiplier (decays while the instance behaves)."""


@dataclass(slots=True)
class _Pool:
    version: int
    everywhere: tuple[Target, ...]
    local: tuple[Target, ...]
    """The instances in the gateway's zone (empty when it has none, or no zone)."""
    cursor: int = 0


class Balancer:
    """Picks instances of discovered services for the HTTP proxy and keeps their failure record."""

    def __init__(
        self,
        registry: Registry,
        *,
        zone: str | None = None,
        clock: Callable[[], float] = time.time,
        ejection: Ejection = Ejection(),
    ) -> None:
        """`zone` is the gateway's availability zone (compared with the instances'
        `AVAILABILITY_ZONE`); `clock` times ejections (tests pass one they control)."""
        self.registry = registry
        self.zone = zone
        self.ejection = ejection
        self._clock = clock
        self._version = 0
        self._pools: dict[str, _Pool] = {}
        self._hosts: dict[str, str | None] = {}
        self._hosts_version = 0
        self._unwatch = registry.watch(self._changed)

    def _changed(self, service_id: str) -> None:
        # Called in the middle of the registry's write: note the change, read it on next use.
        self._version += 1

    def close(self) -> None:
        self._unwatch()

    # -- which service ------------------------------------------------------------------------
    def service_for_host(self, host: str) -> str | None:
        """The id of the service a URI host names (`service.namespace`), or None."""
        version = self._version
        if self._hosts_version != version:
            self._hosts, self._hosts_version = {}, version
        hosts = self._hosts
        try:
            return hosts[host]
        except KeyError:
            pass
        service = self.registry.resolve_name(host)
        service_id = service.id if service is not None else None
        if len(hosts) < _MAX_HOSTS:
            hosts[host] = service_id
        return service_id

    # -- which instance -----------------------------------------------------------------------
    def choose(self, service_id: str, avoid: Target | None = None) -> Target | None:
        """The next instance for a request, None when the service has none eligible.

        `avoid` is the instance a retry must not go back to, unless it is the only one. When
        every other instance is ejected, a retry goes to an ejected one: a suspect instance is a
        better bet than the one that has just failed.
        """
        pool = self._pools.get(service_id)
        if pool is None or pool.version != self._version:
            pool = self._build(service_id)
        now = self._clock()
        found = _next(pool, pool.local, now, avoid) or _next(pool, pool.everywhere, now, avoid)
        if found is None and avoid is not None:
            found = _next(pool, pool.everywhere, float("inf"), avoid)
        if found is None and pool.everywhere:
            found = avoid if avoid in pool.everywhere else pool.everywhere[0]
        return found

    def _build(self, service_id: str) -> _Pool:
        version = self._version
        old = self._pools.get(service_id)
        known = {(t.instance_id, t.authority): t for t in old.everywhere} if old else {}
        try:
            instances = self.registry.healthy(service_id)
        except CloudMapError:
            # No such service (any more): a host decision naming it is stale too.
            instances = ()
            if service_id in self._hosts.values():
                self._hosts = {}
        targets: list[Target] = []
        for instance in instances:
            address = instance.address
            if address is None:
                continue
            host, port = address
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            target = known.get((instance.id, authority))
            if target is None or target.zone != instance.zone:
                target = Target(service_id, instance.id, authority, instance.zone, host, port)
            targets.append(target)
        everywhere = tuple(targets)
        local = tuple(t for t in everywhere if self.zone is not None and t.zone == self.zone)
        pool = _Pool(version, everywhere, local, old.cursor if old else 0)
        self._pools[service_id] = pool
        return pool

    # -- how it went --------------------------------------------------------------------------
    def succeeded(self, target: Target) -> None:
        if target.failures:
            target.failures = 0

    def failed(self, target: Target) -> None:
        """A connection failure: the instance is ejected once it has had enough in a row."""
        target.failures += 1
        settings = self.ejection
        now = self._clock()
        if target.failures < settings.consecutive_failures or target.ejected_until > now:
            return
        pool = self._pools.get(target.service_id)
        others = pool.everywhere if pool is not None else ()
        if not any(t is not target and t.ejected_until <= now for t in others):
            return  # the last instance in rotation stays: better a suspect than nothing
        if target.ejections:
            # Time behaving since the last ejection ended earns the multiplier back.
            quiet = int((now - target.ejected_until) // settings.base_ejection_s)
            target.ejections = max(0, target.ejections - quiet)
        target.ejections += 1
        length = min(settings.base_ejection_s * target.ejections, settings.max_ejection_s)
        target.ejected_until = now + length
        log.warning(
            "instance %s of service %s (%s) ejected for %.0f s after %d connection failures",
            target.instance_id,
            target.service_id,
            target.authority,
            length,
            target.failures,
        )
        target.failures = 0

    def ejected(self, service_id: str) -> list[str]:
        """The ids of the service's instances out of rotation now, in registration order."""
        pool = self._pools.get(service_id)
        now = self._clock()
        return [t.instance_id for t in pool.everywhere if t.ejected_until > now] if pool else []


def _next(
    pool: _Pool, candidates: tuple[Target, ...], now: float, avoid: Target | None
) -> Target | None:
    """Round robin: the first candidate in rotation from the pool's cursor on."""
    count = len(candidates)
    if not count:
        return None
    start = pool.cursor
    pool.cursor = start + 1
    for step in range(count):
        target = candidates[(start + step) % count]
        if target.ejected_until <= now and target is not avoid:
            return target
    return None
