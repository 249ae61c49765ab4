"""The default invoker: pools of local execution environments, one pool per version and tenant."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Collection

from fogbank.config import NodeConfig
from fogbank.functions._custom import CustomEnvironment
from fogbank.functions._envvars import environment_for
from fogbank.functions._layers import layer_set_key, merge_layers, python_paths
from fogbank.functions._logs import LogStore, invocation_log
from fogbank.functions._python_env import PythonEnvironment, error_payload, read_memory_mb
from fogbank.functions._reload import Generations, versions, zygote_sets
from fogbank.functions._types import (
    MAX_SYNC_PAYLOAD,
    ChunkSink,
    EnvResult,
    EnvState,
    ExecutionEnvironment,
    InitType,
    InvalidParameterValue,
    Invocation,
    InvokeRequest,
    InvokeResult,
    ResourceNotFound,
    TooManyRequests,
)
from fogbank.functions._warm import Pool, WarmFirst, default_parallel
from fogbank.functions._zygote import Zygote
from fogbank.model import App, Function, FunctionConfig, TenancyMode

log = logging.getLogger("fogbank.functions")

PoolKey = tuple[str, str, str | None]
"""(function name, version, tenant id)."""
ZygoteKey = tuple[str, str | None, str, int]
"""(interpreter, layer set key, Python minor version, generation of the layer set)."""

_REAP_EVERY_S = 1.0


class LocalInvoker:
    """Runs invocations in forked (Python) or spawned (custom runtime) local processes."""

    def __init__(
        self, config: NodeConfig, app_provider: Callable[[], App], logs: LogStore | None = None
    ) -> None:
        self.config = config
        self.fconfig = config.functions
        self.app_provider = app_provider
        self.logs = logs or LogStore(config.logs_dir)
        self._zygotes: dict[ZygoteKey, Zygote] = {}
        self._zygote_locks: dict[ZygoteKey, asyncio.Lock] = {}
        self._discarding: set[asyncio.Task[None]] = set()
        self.generations = Generations()
        self._pools: dict[PoolKey, Pool] = {}
        self.warm = WarmFirst(
            self.fconfig.warm_parallel or default_parallel(), self.fconfig.warm_wait_s
        )
        self._busy: set[ExecutionEnvironment] = set()
        self._in_flight: dict[str, int] = {}
        self._total_in_flight = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._provisioned: set[str] = set()
        """Ids of environments kept warm for provisioned concurrency (never reaped)."""
        self.private_tmp = config.functions.private_tmp
        self.node_variables: dict[str, str] = {}
        """Variables every environment gets unless the function sets them (the node's endpoints
        and zone, known once the node has bound its ports)."""

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        shutil.rmtree(self.config.run_dir, ignore_errors=True)
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        self._supervisor = asyncio.create_task(self._supervise(), name="fogbank-env-supervisor")
        await self.provision(self.app_provider())

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        envs = [env for pool in self._pools.values() for env in pool.idle] + list(self._busy)
        self._pools.clear()
        self._busy.clear()
        await asyncio.gather(*(env.stop() for env in envs), return_exceptions=True)
        await asyncio.gather(*self._discarding, return_exceptions=True)
        zygotes = [*self._zygotes.values(), *self.generations.retired(unused_only=False)]
        await asyncio.gather(*(z.stop() for z in zygotes), return_exceptions=True)
        self._zygotes.clear()
        self.logs.close()

    async def provision(self, app: App) -> None:
        """Warm a zygote per runtime and layer set, then start provisioned environments.

        Warming zygotes here keeps the interpreter start out of every function's first
        invocation: a cold start is then only a fork and the handler's import.
        """
        for cfg in {id(f.latest): f.latest for f in app.functions.values()}.values():
            if cfg.is_python:
                await self._zygote(cfg)
        for fn in app.functions.values():
            for qualifier, count in fn.provisioned_concurrency.items():
                version = (
                    fn.aliases[qualifier].function_version if qualifier in fn.aliases else qualifier
                )
                target = fn.config(version)
                if target is None:
                    continue
                pool = self._pools.setdefault((fn.name, target.version, None), Pool())
                have = sum(1 for env in pool.idle if env.env_id in self._provisioned)
                for _ in range(count - have):
                    env = await self._create(target, None, InitType.PROVISIONED)
                    if isinstance(env, CustomEnvironment):
                        await env.wait_ready()
                    self._provisioned.add(env.env_id)
                    pool.idle.insert(0, env)

    def runtime_summary(self) -> list[str]:
        """One line per Python runtime mapping, for the start-up banner."""
        from fogbank.model import PYTHON_RUNTIMES

        return [f"{rt} -> {self.fconfig.interpreter_for(rt)}" for rt in PYTHON_RUNTIMES]

    async def invalidate(self, names: Collection[str], *, zygotes: bool = False) -> set[str]:
        """Retire the environments of these functions (every version): their code changed.

        Idle environments stop now; busy ones finish their invocation on the old code and are
        then discarded, so the next invocation starts a fresh environment. With `zygotes` (a
        layer or a preloaded module changed) the zygotes they fork from are replaced and their
        layers merged afresh, which retires every function forked from those zygotes as well.
        Returns the names of the functions retired.
        """
        app = self.app_provider()
        stale = {name for name in names if name in app.functions}
        sets: set[str] = set()
        if zygotes:
            sets = zygote_sets(cfg for name in stale for cfg in versions(app.functions[name]))
            stale |= {fn.name for fn in app.functions.values() if zygote_sets(versions(fn)) & sets}
            for zkey in [zkey for zkey in self._zygotes if (zkey[1] or "") in sets]:
                self.generations.retire(self._zygotes.pop(zkey))
        # New zygote keys from here on: environments started now get new zygotes and merges.
        self.generations.bump(stale, sets)
        idle: list[ExecutionEnvironment] = []
        for key, pool in self._pools.items():
            if key[0] in stale:
                idle += pool.idle
                pool.idle.clear()
        for env in idle:
            self._provisioned.discard(env.env_id)
        await asyncio.gather(*(env.stop() for env in idle), return_exceptions=True)
        await self._stop_retired_zygotes()
        # Warm the new zygotes now and bring provisioned concurrency back to strength.
        await self.provision(app)
        return stale

    async def _stop_retired_zygotes(self) -> None:
        unused = self.generations.retired(unused_only=True)
        await asyncio.gather(*(z.stop() for z in unused), return_exceptions=True)

    # -- invocation ---------------------------------------------------------------------------

    async def invoke(self, request: InvokeRequest, sink: ChunkSink | None = None) -> InvokeResult:
        fn = self.app_provider().functions.get(request.function_name)
        if fn is None:
            raise ResourceNotFound(f"Function not found: {request.invoked_arn}")
        tenant = self._tenant(fn, request.tenant_id)
        self._admit(fn)
        key = (request.config.name, request.config.version, tenant)
        pool = self._pools.get(key) or self._pools.setdefault(key, Pool())
        try:
            env = await self._acquire(pool, request.config, tenant)
            invocation = Invocation(
                request_id=request.request_id,
                payload=request.payload,
                invoked_arn=request.invoked_arn,
                deadline_ms=int(time.time() * 1000) + request.config.timeout_s * 1000,
                trace_id=request.trace_id,
                client_context=request.client_context,
                tenant_id=tenant,
                stream=sink is not None,
            )
            self._busy.add(env)
            try:
                result = await env.invoke(invocation, sink)
            except BaseException:
                pool.busy -= 1
                self.warm.release_one(pool)
                raise
            finally:
                self._busy.discard(env)
            if env.env_id in self._provisioned:
                # Its init ran ahead of time, outside any invocation: Lambda reports none.
                result.init_duration_ms = None
            if self.warm.enabled:
                pool.observe(result.duration_ms)
            self._release(pool, env, result)
        finally:
            self._in_flight[fn.name] -= 1
            self._total_in_flight -= 1
        return self._finish(request, result)

    def _tenant(self, fn: Function, tenant_id: str | None) -> str | None:
        if fn.tenancy is TenancyMode.PER_TENANT:
            if not tenant_id:
                raise InvalidParameterValue(
                    f"The function {fn.name} uses tenant isolation mode PER_TENANT: "
                    "a tenant id (X-Amz-Tenant-Id) is required."
                )
            return tenant_id
        if tenant_id:
            raise InvalidParameterValue(
                f"The function {fn.name} does not use tenant isolation: remove the tenant id."
            )
        return None

    def _admit(self, fn: Function) -> None:
        """Count the invocation against reserved and node concurrency, or reject it (429)."""
        running = self._in_flight.get(fn.name, 0)
        if fn.reserved_concurrency is not None and running >= fn.reserved_concurrency:
            raise TooManyRequests(
                "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        if self._total_in_flight >= self.fconfig.max_environments:
            raise TooManyRequests("Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded")
        self._in_flight[fn.name] = running + 1
        self._total_in_flight += 1

    async def _acquire(
        self, pool: Pool, cfg: FunctionConfig, tenant: str | None
    ) -> ExecutionEnvironment:
        """An environment for one invocation, counted busy in its pool until `_release`."""
        if self.warm.should_wait(pool):
            env = await self.warm.wait(pool)
            if env is not None:
                if self._usable(env, cfg):
                    return env
                pool.busy -= 1
                await env.stop()
        while pool.idle:
            env = pool.idle.pop()
            if self._usable(env, cfg):
                pool.busy += 1
                return env
            await env.stop()
        started = time.monotonic()
        pool.starting += 1
        try:
            env = await self._create(cfg, tenant, InitType.ON_DEMAND)
        finally:
            pool.starting -= 1
        pool.busy += 1
        pool.observe_cold((time.monotonic() - started) * 1000)
        return env

    def _usable(self, env: ExecutionEnvironment, cfg: FunctionConfig) -> bool:
        return env.state is EnvState.IDLE and env.config is cfg and self.generations.current(env)

    def _release(self, pool: Pool, env: ExecutionEnvironment, result: EnvResult) -> None:
        """Pool a finished environment, or hand it straight to an invocation waiting for one
        (which keeps it counted busy)."""
        if self._returning(env, result) and self.warm.hand_over(pool, env):
            return
        pool.busy -= 1
        if result.env_lost or env.state is not EnvState.IDLE:
            self.warm.release_one(pool)
            return
        if not self.generations.current(env):
            # Its code changed while it ran: stopped in the background, not pooled.
            self._provisioned.discard(env.env_id)
            task = asyncio.create_task(env.stop())
            self._discarding.add(task)
            task.add_done_callback(self._discarding.discard)
            self.warm.release_one(pool)
            return
        pool.idle.append(env)

    def _returning(self, env: ExecutionEnvironment, result: EnvResult) -> bool:
        """The environment can serve another invocation right away."""
        return not result.env_lost and env.state is EnvState.IDLE and self.generations.current(env)

    def _finish(self, request: InvokeRequest, result: EnvResult) -> InvokeResult:
        cfg = request.config
        if (
            result.error_type is None
            and not result.streamed
            and len(result.payload) > MAX_SYNC_PAYLOAD
        ):
            result.error_type = "Function.ResponseSizeTooLarge"
            result.payload = error_payload(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size "
                f"({MAX_SYNC_PAYLOAD + 100} bytes).",
            )
        text = invocation_log(request.request_id, cfg.version, cfg.memory_mb, result)
        self.logs.append(cfg.name, text)
        return InvokeResult(
            request_id=request.request_id,
            payload=result.payload,
            executed_version=cfg.version,
            function_error="Unhandled" if result.error_type else None,
            error_type=result.error_type,
            log=text,
            streamed=result.streamed,
        )

    # -- environments -------------------------------------------------------------------------

    async def _create(
        self, cfg: FunctionConfig, tenant: str | None, init_type: InitType
    ) -> ExecutionEnvironment:
        env_id = uuid.uuid4().hex
        generation = self.generations.of(cfg.name)
        run_dir = self.generations.run_dir(self.config.run_dir, cfg.layers)
        if not cfg.is_python:
            custom = CustomEnvironment(
                cfg,
                identity=self.config.identity,
                run_dir=run_dir,
                env_id=env_id,
                tenant_id=tenant,
                init_type=init_type,
                defaults=self.node_variables,
            )
            self.generations.record(custom, generation, None)
            await custom.start()
            return custom
        tmp_dir = self.config.run_dir / "tmp" / env_id
        layer_root = merge_layers(cfg.layers, run_dir / "layers")
        variables = environment_for(
            cfg,
            identity=self.config.identity,
            env_id=env_id,
            init_type=init_type,
            layer_root=layer_root,
            tmp_dir=tmp_dir,
            defaults=self.node_variables,
        )
        zygote = await self._zygote(cfg)
        env = PythonEnvironment(
            cfg,
            zygote=zygote,
            env=variables,
            tmp_dir=tmp_dir,
            private_tmp=self.private_tmp,
            tenant_id=tenant,
            env_id=env_id,
        )
        self.generations.record(env, generation, zygote)
        await env.start()
        return env

    def _zygote_key(self, cfg: FunctionConfig) -> ZygoteKey:
        interpreter = self.fconfig.interpreter_for(cfg.runtime)
        layers_key = layer_set_key(cfg.layers) if cfg.layers else None
        generation = self.generations.of_layers(layers_key or "")
        return interpreter, layers_key, cfg.runtime.removeprefix("python"), generation

    async def _zygote(self, cfg: FunctionConfig) -> Zygote:
        key = self._zygote_key(cfg)
        interpreter, _, minor, _ = key
        zygote = self._zygotes.get(key)
        if zygote is not None and zygote.alive:
            return zygote
        lock = self._zygote_locks.setdefault(key, asyncio.Lock())
        async with lock:
            zygote = self._zygotes.get(key)
            if zygote is not None and zygote.alive:
                return zygote
            run_dir = self.generations.run_dir(self.config.run_dir, cfg.layers)
            layer_root = merge_layers(cfg.layers, run_dir / "layers")
            zygote = Zygote(
                interpreter,
                python_paths(layer_root, minor),
                self.fconfig.preload,
                private_tmp=self.private_tmp,
            )
            await zygote.start()
            if key == self._zygote_key(cfg):
                self._zygotes[key] = zygote
            else:
                # A reload replaced it while it started; only the (stale) caller forks from it.
                self.generations.retire(zygote)
            return zygote

    async def _supervise(self) -> None:
        """Kill environments over their memory size; stop the ones idle for too long."""
        next_reap = time.monotonic() + _REAP_EVERY_S
        while True:
            await asyncio.sleep(self.fconfig.memory_poll_s)
            for env in list(self._busy):
                # Custom-runtime environments watch their own process tree.
                if not isinstance(env, PythonEnvironment):
                    continue
                pid = env.pid
                if pid is not None and read_memory_mb(pid) > env.config.memory_mb:
                    log.warning(
                        "%s: environment %s exceeded %d MB; stopping it",
                        env.config.name,
                        env.env_id,
                        env.config.memory_mb,
                    )
                    env.oom_killed = True
                    env.kill()
            now = time.monotonic()
            if now < next_reap:
                continue
            next_reap = now + _REAP_EVERY_S
            await self._stop_retired_zygotes()
            for pool in self._pools.values():
                stale = [
                    env
                    for env in pool.idle
                    if env.env_id not in self._provisioned
                    and now - env.last_used > self.fconfig.idle_timeout_s
                ]
                for env in stale:
                    pool.idle.remove(env)
                    await env.stop()
