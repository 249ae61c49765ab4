"""A node: the front process that serves the control plane and supervises environments."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any

import uvicorn

from fogbank._errors import ConfigError
from fogbank._http_server import CoalescingHttpToolsProtocol
from fogbank.admin import PREFIXES, AdminControl, AdminStore, admin_api
from fogbank.config import NodeConfig
from fogbank.discovery import CloudMapApi, DnsServer, HealthProber, Registry, is_cloud_map
from fogbank.functions._async import AsyncInvoker
from fogbank.functions._invoke_api import InvokeApi
from fogbank.functions._local import LocalInvoker
from fogbank.functions._logs import LogStore
from fogbank.functions._reload import CodeWatcher, Reload
from fogbank.functions._traffic import AliasShifter, Shift
from fogbank.gateway import Gateway
from fogbank.model import App
from fogbank.services import ServiceControl, Supervisor
from fogbank.store import Clock, SqliteEventQueue, check_stores, close_stores, open_stores

log = logging.getLogger("fogbank")

# In-flight requests get this long to finish on shutdown before they are cancelled.
SHUTDOWN_GRACE_S = 10


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket, turning "address in use" into one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio then turns Nagle off (keep-alive answers would wait ~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node (which stops it in order)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Server:
    """One uvicorn server on a socket we bound ourselves (so port 0 works and errors are ours)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app,
            http=CoalescingHttpToolsProtocol,
            loop="none",
            lifespan="off",
            access_log=False,
            server_header=False,
            # fogbank builds X-Forwarded-* itself, as API Gateway does; uvicorn need not parse them.
            proxy_headers=False,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self.server = _QuietServer(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                return
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()


class ControlPlane:
    """The control port: AWS JSON calls with a Cloud Map target go to the Cloud Map API, the
    admin API's paths to it, everything else to the Lambda API."""

    def __init__(self, lambda_api: Any, admin: Any, cloud_map: Any) -> None:
        self.lambda_api = lambda_api
        self.admin = admin
        self.cloud_map = cloud_map

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            await self.admin(scope, receive, send)
        elif scope["type"] == "http" and is_cloud_map(scope):
            await self.cloud_map(scope, receive, send)
        else:
            await self.lambda_api(scope, receive, send)


class Node:
    """Everything `fogbank up` runs, startable several times in one process (tests do)."""

    def __init__(
        self,
        config: NodeConfig,
        app: App,
        *,
        reload: bool = False,
        on_reload: Callable[[Reload], None] | None = None,
        on_shift: Callable[[Shift], None] | None = None,
        clock: Clock = time.time,
    ) -> None:
        """`reload` watches the code and layer directories (`fogbank up` does by default);
        `clock` drives rate limits, quotas and caches (tests pass one they control)."""
        self.config = config
        self.app = app
        self.logs = LogStore(config.logs_dir)
        self.invoker = LocalInvoker(config, self.current_app, self.logs)
        self._on_reload = on_reload
        self.watcher = (
            CodeWatcher(
                self.invoker,
                self.current_app,
                config,
                on_reload=self._reloaded,
                on_services=lambda names: self.services.code_changed(names),
            )
            if reload
            else None
        )
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.queue = SqliteEventQueue(config.state_dir / "async-events.sqlite3")
        self.async_invoker = AsyncInvoker(
            self.invoker, self.queue, self.current_app, config.functions
        )
        self.invoke_api = InvokeApi(
            self.current_app, self.invoker, self.async_invoker, config.identity
        )
        self.stores = open_stores(config, clock)
        self.registry = Registry(config.identity, config.state_dir / "registry.sqlite3")
        self.supervisor = Supervisor(
            self.registry,
            self.logs,
            zone=config.zone_name,
            run_dir=config.state_dir / "services",
            host=reachable_host(config.host),
        )
        self.prober = HealthProber(self.registry, interval_s=config.cloud_map_probe_interval_s)
        self.services = ServiceControl(self.supervisor, config.state_dir / "service-counts.json")
        """The node's services: the deployed specs with the admin API's changes laid over."""
        self.dns = (
            DnsServer(self.registry, config.dns_host, config.dns_port)
            if config.dns_port is not None
            else None
        )
        self.admin_token = config.admin_token or secrets.token_urlsafe(24)
        """The admin API's token; a random one when the config names none (never open)."""
        self.gateway = Gateway(
            self.current_app,
            self.invoker,
            config.identity,
            stores=self.stores,
            clock=clock,
            account_throttle=config.account_throttle,
            iam_credentials=config.iam_credentials,
            admin_token=self.admin_token,
            registry=self.registry,
            zone=config.zone_name,
        )
        self.admin = AdminControl(
            AdminStore(config.state_dir / "admin.sqlite3"), app, self.current_app, self.deploy
        )
        self.shifter = AliasShifter(
            self.current_app,
            self.deploy,
            self.invoker,
            config.state_dir / "versions",
            on_shift=on_shift,
        )
        self.control_plane = ControlPlane(
            self.invoke_api,
            admin_api(
                self.admin,
                self.admin_token,
                quotas=lambda: self.stores.quotas,
                flush_cache=self.gateway.flush_stage_cache,
                endpoint=lambda api_id: f"http://{api_id}.execute-api.localhost:{self.port}",
                services=self.services,
            ),
            CloudMapApi(self.registry),
        )
        self._shifting: set[asyncio.Task[list[str]]] = set()
        self._control: _Server | None = None
        self._data: _Server | None = None

    def _reloaded(self, change: Reload) -> None:
        """A code change: functions with `AutoPublishAlias` publish a version and shift to it."""
        task = asyncio.get_running_loop().create_task(self.shifter.code_changed(change.functions))
        self._shifting.add(task)
        task.add_done_callback(self._shifting.discard)
        if self._on_reload is not None:
            self._on_reload(change)

    def current_app(self) -> App:
        return self.app

    @property
    def control_port(self) -> int:
        assert self._control is not None
        return self._control.port

    @property
    def control_url(self) -> str:
        return f"http://{self.config.control_host}:{self.control_port}"

    @property
    def port(self) -> int:
        """The data plane's port (the one bound, when the config asked for 0)."""
        assert self._data is not None
        return self._data.port

    @property
    def url(self) -> str:
        return f"http://{reachable_host(self.config.host)}:{self.port}"

    async def deploy(self, app: App) -> None:
        """Swap in a new app; environments of changed function versions are replaced lazily,
        services whose spec changed roll over to the new one."""
        self.app = app
        self.registry.apply_template(
            app.namespaces.values(),
            app.discovery_services.values(),
            app.discovery_instances.values(),
        )
        await self.invoker.provision(app)
        await self.services.deploy(app.services)

    async def start(self) -> None:
        control_sock = bind_socket(self.config.control_host, self.config.control_port)
        try:
            data_sock = bind_socket(self.config.host, self.config.port)
        except BaseException:
            control_sock.close()
            raise
        try:
            await check_stores(self.stores, self.config.redis_url)
            control = (
                f"http://{reachable_host(self.config.control_host)}:{control_sock.getsockname()[1]}"
            )
            # Functions find services through the Cloud Map API (boto3 reads this variable too).
            self.invoker.node_variables.update(
                AWS_ENDPOINT_URL_SERVICEDISCOVERY=control,
                AVAILABILITY_ZONE=self.config.zone_name,
            )
            self.registry.apply_template(
                self.app.namespaces.values(),
                self.app.discovery_services.values(),
                self.app.discovery_instances.values(),
            )
            await self.prober.start()
            if self.dns is not None:
                await self.dns.start()
            # The admin API's records and frozen versions are laid over the template first.
            self.app = await self.shifter.prepare(await self.admin.start())
            await self.invoker.start()
            if self.watcher is not None:
                await self.watcher.start()
            await self.async_invoker.start()
            self._control = _Server(self.control_plane, control_sock)
            await self._control.start()
            self._data = _Server(self.gateway.asgi, data_sock)
            await self._data.start()
            await self.supervisor.start()
            await self.services.deploy(self.app.services)
        except BaseException:
            control_sock.close()
            data_sock.close()
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, then stop environments."""
        if self.watcher is not None:
            await self.watcher.stop()
        for task in self._shifting:
            task.cancel()
        await self.shifter.stop()
        servers = [s for s in (self._data, self._control) if s is not None]
        await asyncio.gather(*(s.stop() for s in servers))
        self._data = self._control = None
        await self.gateway.close()
        await self.supervisor.stop()
        if self.dns is not None:
            await self.dns.stop()
        await self.async_invoker.stop()
        await self.invoker.stop()
        await self.queue.close()
        self.admin.close()
        await self.prober.stop()
        self.registry.close()
        await close_stores(self.stores)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def reachable_host(host: str) -> str:
    """The address clients use for a listening host (a wildcard bind is reached on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@contextlib.asynccontextmanager
async def running(config: NodeConfig, app: App) -> AsyncIterator[Node]:
    node = Node(config, app)
    async with node:
        yield node
