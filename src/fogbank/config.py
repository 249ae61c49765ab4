"""Typed node configuration, built once at the edge (the CLI or a test) and passed down."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fogbank.model import Identity, Throttle
from fogbank.model._management import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT

DEFAULT_IAM_CREDENTIALS: Mapping[str, str] = {"fogbank": "fogbank"}
"""The one credential `AWS_IAM` routes accept unless configured otherwise (like `aws configure`
with `fogbank` / `fogbank`)."""

WARM_WAIT_S = 0.05
"""`FunctionsConfig.warm_wait_s` under `fogbank up --warm-first`."""


@dataclass(frozen=True, slots=True)
class FunctionsConfig:
    """Settings of the function machinery on one node."""

    max_environments: int = 64
    """Node-wide cap on concurrent invocations (the account concurrency of this node)."""
    idle_timeout_s: float = 300.0
    """An environment idle this long is stopped (provisioned environments excepted)."""
    interpreters: Mapping[str, str] = field(default_factory=dict)
    """Runtime name (`python3.12`) -> interpreter path; unmapped Python runtimes use `sys.executable`."""
    preload: tuple[str, ...] = ()
    """Modules every zygote imports before forking, shared by all environments (e.g. `boto3`)."""
    private_tmp: bool = True
    """Give each environment its own `/tmp` with a mount namespace when the OS allows it."""
    async_retry_delays_s: tuple[float, ...] = (60.0, 120.0)
    """Delays before the first and second retry of a failed async invocation (AWS: ~1 and ~2 min)."""
    async_throttle_delay_s: float = 5.0
    """Delay before an async invocation rejected for concurrency is tried again."""
    memory_poll_s: float = 0.05
    """How often running environments' memory is checked against their memory size."""
    warm_wait_s: float = 0.0
    """Warm-first scaling: how long a short invocation may wait for one of its function's busy
    environments instead of starting a new one (see `functions/_warm.py`; `WARM_WAIT_S` under
    `--warm-first`); 0, the default, starts a new environment for every concurrent invocation,
    as Lambda does."""
    warm_parallel: int = 0
    """Busy environments a function may have before short invocations wait for one of them;
    0 = twice the CPUs the node may run on, and at least 4."""

    def interpreter_for(self, runtime: str) -> str:
        return self.interpreters.get(runtime, sys.executable)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything one node needs; several nodes can run in one process with different configs."""

    host: str = "127.0.0.1"
    """Interface the data plane listens on."""
    port: int = 3000
    """Data-plane port (the application's APIs)."""
    control_host: str = "127.0.0.1"
    control_port: int = 3001
    """Control-plane port (Lambda Invoke API, admin API)."""
    state_dir: Path = Path(".fogbank")
    """Where logs, the async queue and other durable state live."""
    identity: Identity = field(default_factory=Identity)
    functions: FunctionsConfig = field(default_factory=FunctionsConfig)
    redis_url: str | None = None
    """Cluster store for counters, quotas and caches (`redis://127.0.0.1:6379/0`); None = memory."""
    redis_prefix: str = "fogbank:"
    """Prefix of every Redis key; nodes with the same URL and prefix share counters and caches."""
    account_throttle: Throttle = field(
        default_factory=lambda: Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT)
    )
    """The account-level token bucket every API request passes last (AWS: 10,000 rps, 5,000
    burst); nodes sharing a Redis store share it, as one AWS account's APIs do."""
    admin_token: str | None = None
    """Bearer token the admin API requires; None lets the CLI generate one at start-up."""
    iam_credentials: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_IAM_CREDENTIALS)
    )
    """Access key -> secret key that `AWS_IAM` routes accept SigV4 signatures from (service
    `execute-api`, any region); `fogbank up --iam-credentials KEY=SECRET` sets it."""

    zone: str | None = None
    """This node's availability-zone label: its service instances carry it, its gateway prefers
    instances in it, its functions see it in `AVAILABILITY_ZONE`; None = the region's `a` zone."""
    dns_host: str = "127.0.0.1"
    dns_port: int | None = None
    """Port of the DNS server that answers A and SRV queries for discovered services; None = no
    DNS server (`fogbank up` serves one on 8600 unless told `--dns-port off`)."""

    cloud_map_probe_interval_s: float = 30.0
    """How often instances of Cloud Map services with a `HealthCheckConfig` are probed (Route
    53's standard interval); supervised instances are checked by their own health checks."""

    @property
    def zone_name(self) -> str:
        return self.zone or f"{self.identity.region}a"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Per-run scratch space (environment /tmp dirs, merged layers); emptied at start."""
        return self.state_dir / "run"
