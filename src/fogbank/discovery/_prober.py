"""Route 53's health checks, run by the node: the prober behind services with `HealthCheckConfig`.

On AWS, a Cloud Map service with `HealthCheckConfig` gets a Route 53 health check per instance,
and the check's verdict is the instance's health. fogbank has no Route 53, so `HealthProber` does
the checking: every round it probes each instance of such a service and moves the instance's
health in the registry once `FailureThreshold` results in a row disagree with it.

Route 53's rules, from its developer guide ("How Amazon Route 53 determines whether a health check
is healthy") and the `HealthCheckConfig` references of Route 53 and Cloud Map:

- a checker sends a request every 30 seconds (`RequestInterval`'s default; Cloud Map's checks
  always use 30);
- HTTP and HTTPS: a TCP connection within four seconds, then a 2xx or 3xx status within two
  seconds after connecting; HTTPS certificates are not validated;
- TCP: a connection within ten seconds;
- `FailureThreshold` counts consecutive checks: that many failures in a row make a healthy
  endpoint unhealthy, and that many passes in a row make an unhealthy one healthy again;
- a new check counts as healthy until there is enough data (so an instance starts HEALTHY).

Route 53 aggregates checkers in several regions (healthy when more than 18% of them say so); one
node is one checker, so its own verdict is the verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from dataclasses import dataclass

import httpx

from fogbank._errors import FogbankError
from fogbank.discovery._records import (
    CNAME,
    IPV4,
    IPV6,
    PORT,
    CloudMapError,
    HealthStatus,
    Instance,
    Owner,
    Service,
)
from fogbank.discovery._registry import Registry

log = logging.getLogger("fogbank")

REQUEST_INTERVAL_S = 30.0
"""Route 53's standard request interval (Cloud Map's health checks use it)."""
HTTP_CONNECT_TIMEOUT_S = 4.0
"""How long Route 53 waits for an HTTP or HTTPS check's TCP connection."""
HTTP_RESPONSE_TIMEOUT_S = 2.0
"""How long after connecting an HTTP or HTTPS endpoint has to answer with its status."""
TCP_CONNECT_TIMEOUT_S = 10.0
"""How long Route 53 waits for a TCP check's connection."""
MAX_CONCURRENT_PROBES = 32
"""Probes in flight at once: enough for a round of every local instance to take about one
timeout, few enough not to exhaust file descriptors or a 2-core machine."""
_USER_AGENT = "fogbank (Route 53 health check)"


@dataclass(frozen=True, slots=True)
class _Target:
    """What one instance's probe reaches and how. Results count towards a flip only while the
    target stays the same: a re-registration at another address, or an `UpdateService` that
    changes the check, starts the count afresh."""

    type: str
    """`HTTP`, `HTTPS` or `TCP`."""
    host: str | None
    """None: the instance has no address to probe (every probe fails)."""
    port: int
    path: str
    threshold: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.type.lower()}://{host}:{self.port}{self.path}"

    @property
    def name(self) -> str:
        """How log lines name the check."""
        return f"TCP {self.host}:{self.port}" if self.type == "TCP" else f"GET {self.url}"


@dataclass(slots=True)
class _Streak:
    """Consecutive results that disagree with an instance's current health."""

    target: _Target
    count: int = 0


def probe_target(service: Service, instance: Instance) -> _Target | None:
    """The check the prober runs for an instance, or None when the instance is not its to probe
    (no `HealthCheckConfig`, custom health, or an instance the supervisor runs and checks)."""
    check = service.health_check
    if check is None or service.custom_health_failure_threshold is not None:
        return None
    if instance.owner is Owner.SUPERVISOR:
        return None
    attributes = instance.attributes
    # With both addresses, Cloud Map's check uses the IPv4 one (its HealthCheckConfig reference,
    # "A and AAAA records").
    host = attributes.get(IPV4) or attributes.get(IPV6) or attributes.get(CNAME) or None
    port = attributes.get(PORT, "")
    path = check.resource_path or "/"
    return _Target(
        type=check.type,
        host=host,
        port=int(port) if port.isdigit() else 0,
        path=path if path.startswith("/") else f"/{path}",
        threshold=check.failure_threshold,
    )


class HealthProber:
    """Probes the instances of services with `HealthCheckConfig` and sets their health.

    `start()` runs a round (`probe_once`) every `interval_s`; `stop()` ends the loop and closes
    the HTTP client. Runs on the registry's event loop. The timeouts are Route 53's unless given:
    `connect_timeout_s` for an HTTP(S) check's connection, `timeout_s` for its answer after
    connecting, `tcp_timeout_s` for a TCP check's connection.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        interval_s: float = REQUEST_INTERVAL_S,
        timeout_s: float = HTTP_RESPONSE_TIMEOUT_S,
        connect_timeout_s: float = HTTP_CONNECT_TIMEOUT_S,
        tcp_timeout_s: float = TCP_CONNECT_TIMEOUT_S,
        max_concurrent: int = MAX_CONCURRENT_PROBES,
    ) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.tcp_timeout_s = tcp_timeout_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._streaks: dict[tuple[str, str], _Streak] = {}
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start probing: a first round at once, then one every `interval_s`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fogbank-health-prober")

    async def stop(self) -> None:
        """Stop probing (a round in progress is cancelled) and close the HTTP client."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.probe_once()
            except Exception:  # a bug in one round must not end health checking for good
                log.exception("discovery: a health-check round failed; the next one follows")
            # Route 53's interval runs from a response to the next request, so a slow round
            # delays the next rather than overlapping it.
            await asyncio.sleep(self.interval_s)

    async def probe_once(self) -> None:
        """One round: probe every instance the prober owns concurrently, then apply the results.
        Instances registered since the last round join it; the state of those gone is dropped."""
        targets: dict[tuple[str, str], _Target] = {}
        for service in self.registry.services():
            for instance in self.registry.instances(service.id):
                target = probe_target(service, instance)
                if target is not None:
                    targets[(service.id, instance.id)] = target
        for key in self._streaks.keys() - targets.keys():
            del self._streaks[key]
        keys = list(targets)
        results = await asyncio.gather(
            *(self._probe(targets[key]) for key in keys), return_exceptions=True
        )
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation: the prober is stopping
                log.error(
                    "discovery: health check of instance %s failed unexpectedly",
                    key[1],
                    exc_info=result,
                )
                continue
            self._apply(key, targets[key], result)

    def _apply(self, key: tuple[str, str], target: _Target, failure: str | None) -> None:
        """Count one result; flip the instance's health at `FailureThreshold` in a row."""
        service_id, instance_id = key
        try:
            service = self.registry.get_service(service_id)
            instance = self.registry.get_instance(service_id, instance_id)
        except CloudMapError:  # deregistered (or its service deleted) while it was probed
            self._streaks.pop(key, None)
            return
        if probe_target(service, instance) != target:
            return  # re-registered elsewhere or the check changed meanwhile: next round counts
        streak = self._streaks.get(key)
        if streak is None or streak.target != target:
            streak = self._streaks[key] = _Streak(target)
        passed = failure is None
        if passed == (instance.health is not HealthStatus.UNHEALTHY):
            streak.count = 0
            if passed and instance.health is HealthStatus.UNKNOWN:
                # A check added to a service by UpdateService: its first pass is the data
                # Route 53 waits for, and UNKNOWN means "not checked".
                self._set(service, instance, HealthStatus.HEALTHY, None)
            return
        streak.count += 1
        if streak.count < target.threshold:
            return
        status = HealthStatus.HEALTHY if passed else HealthStatus.UNHEALTHY
        if self._set(service, instance, status, failure):
            streak.count = 0

    def _set(
        self, service: Service, instance: Instance, status: HealthStatus, failure: str | None
    ) -> bool:
        try:
            self.registry.set_health(service.id, instance.id, status)
        except (CloudMapError, FogbankError) as exc:
            # The state file could not take it: the count stands, so the next round retries.
            log.warning("discovery: instance %s: health not changed: %s", instance.id, exc)
            return False
        where = f"instance {instance.id} of service {service.name}"
        if failure is not None:
            log.info("discovery: %s is %s: %s", where, status.value, failure)
        else:
            log.info("discovery: %s is %s", where, status.value)
        return True

    async def _probe(self, target: _Target) -> str | None:
        """One check: None when it passes, else why it failed."""
        if target.host is None:
            return f"no {IPV4}, {IPV6} or {CNAME} to check"
        async with self._slots:
            if target.type == "TCP":
                return await self._probe_tcp(target.host, target.port)
            return await self._probe_http(target)

    async def _probe_tcp(self, host: str, port: int) -> str | None:
        try:
            async with asyncio.timeout(self.tcp_timeout_s):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            return f"TCP {host}:{port}: no connection within {self.tcp_timeout_s:g} s"
        except OSError as exc:
            return f"TCP {host}:{port}: {_reason(exc)}"
        writer.close()  # the connection was the whole check
        return None

    async def _probe_http(self, target: _Target) -> str | None:
        client = self._http_client()
        # httpx's read timeout restarts with every chunk; the overall bound stops an endpoint
        # that trickles bytes from holding a probe longer than Route 53 would wait.
        try:
            async with asyncio.timeout(self.connect_timeout_s + self.timeout_s):
                async with client.stream("GET", target.url) as response:
                    status = response.status_code
        except httpx.ConnectTimeout:
            return f"{target.name}: no connection within {self.connect_timeout_s:g} s"
        except (httpx.TimeoutException, TimeoutError):
            return f"{target.name}: no answer within {self.timeout_s:g} s"
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return f"{target.name}: {_reason(exc)}"
        if 200 <= status < 400:
            return None
        return f"{target.name}: HTTP {status}"

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                # Route 53 does not validate certificates: a self-signed or expired one passes.
                verify=False,
                # Instances are local addresses: a proxy from the environment would not reach
                # them, and a Route 53 checker uses none.
                trust_env=False,
                follow_redirects=False,  # a 3xx is itself a pass
                timeout=httpx.Timeout(
                    self.timeout_s, connect=self.connect_timeout_s, pool=self.timeout_s
                ),
                # Every check opens its own connection, as Route 53's checkers do: a kept-alive
                # one would pass for an endpoint that no longer accepts connections.
                limits=httpx.Limits(max_keepalive_connections=0),
                headers={"User-Agent": _USER_AGENT},
            )
        return self._client


def _reason(exc: BaseException) -> str:
    """The words for a connection failure ("Connection refused"), found under httpx's and
    asyncio's wrappers ("All connection attempts failed", "Connect call failed")."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        # Before OSError: these are OSErrors whose errno is not the OS's.
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or seen}"
        if isinstance(seen, socket.gaierror):
            return seen.strerror or str(seen)
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
