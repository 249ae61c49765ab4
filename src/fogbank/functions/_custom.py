"""Execution environments for custom runtimes: `provided`, `provided.al2` and `provided.al2023`.

The function brings its own runtime, an executable `bootstrap` that polls the Runtime API. A
`CustomEnvironment` serves that API on a private port, spawns the bootstrap in a process group of
its own and watches it. The init phase ends at the first `/next`. A timeout, a crash or memory use
past `MemorySize` kills the whole group and loses the environment, as Lambda resets a sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogbank._errors import FogbankError
from fogbank.functions._envvars import environment_for
from fogbank.functions._layers import merge_layers
from fogbank.functions._runtime_api import Handover, ReplyKind, RuntimeApiServer, RuntimeReply
from fogbank.functions._runtime_process import OutputPipe, describe_exit, tree_memory
from fogbank.functions._types import ChunkSink, EnvResult, EnvState, InitType, Invocation
from fogbank.model import FunctionConfig, Identity

EXIT_ERROR = "Runtime.ExitError"
INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
TIMED_OUT = "Sandbox.Timedout"
MEMORY_POLL_S = 0.05
_REAP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why an environment can run no more invocations."""

    error_type: str
    message: str
    """Lambda's text after `RequestId: <id> Error: `."""
    at: float = field(default_factory=time.monotonic)

    def document(self, request_id: str) -> bytes:
        text = f"RequestId: {request_id} Error: {self.message}"
        return json.dumps({"errorType": self.error_type, "errorMessage": text}).encode()


class CustomEnvironment:
    """One `bootstrap` process and the Runtime API it polls: an environment for `provided*`.

    `await start()` returns once the process is spawned; `invoke` runs one invocation at a time.
    An environment that reports `env_lost` has already stopped itself; `stop()` is idempotent.
    """

    def __init__(
        self,
        config: FunctionConfig,
        *,
        identity: Identity,
        run_dir: Path,
        env_id: str | None = None,
        tenant_id: str | None = None,
        init_type: InitType = InitType.ON_DEMAND,
        stop_grace_s: float = 1.0,
        defaults: Mapping[str, str] | None = None,
    ) -> None:
        self.env_id = env_id or uuid.uuid4().hex
        self._defaults = defaults
        self.config = config
        self.tenant_id = tenant_id
        self.state = EnvState.STARTING
        self.last_used = time.monotonic()
        self._identity = identity
        self._run_dir = run_dir
        """Holds `layers/` (merged, shared) and `tmp/<env_id>/`, this environment's private /tmp."""
        self._tmp_dir = run_dir / "tmp" / self.env_id
        self._init_type = init_type
        self._grace = stop_grace_s
        self._server = RuntimeApiServer(on_first_next=self._on_initialised)
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Task[int] | None = None
        self._output: OutputPipe | None = None
        self._failure: _Failure | None = None
        self._started = self._stopped = self._init_reported = False
        self._spawned_at = time.monotonic()
        self._peak_kb = 0

    @property
    def pid(self) -> int | None:
        alive = self._proc is not None and self._proc.returncode is None
        return self._proc.pid if alive and self._proc is not None else None

    async def start(self) -> None:
        """Merge layers, serve the Runtime API and spawn `bootstrap`; returns once it is spawned.

        A missing or unusable bootstrap does not raise: as on Lambda, the first invocation
        reports `Runtime.InvalidEntrypoint`.
        """
        if self._started:
            raise FogbankError(f"environment {self.env_id} was already started")
        self._started = True
        await asyncio.to_thread(self._tmp_dir.mkdir, parents=True, exist_ok=True)
        layers = await asyncio.to_thread(merge_layers, self.config.layers, self._run_dir / "layers")
        await self._server.start()
        self._spawned_at = time.monotonic()
        # Lambda looks for /var/task/bootstrap, then /opt/bootstrap from the layers.
        candidates = [self.config.code_dir / "bootstrap"]
        if layers is not None:
            candidates.append(layers / "bootstrap")
        bootstrap = next((path for path in candidates if path.exists()), None)
        if bootstrap is None:
            listed = " ".join(str(path) for path in candidates)
            self._fail(
                _Failure(INVALID_ENTRYPOINT, f"Couldn't find valid bootstrap(s): [{listed}]")
            )
            return
        env = environment_for(
            self.config,
            identity=self._identity,
            env_id=self.env_id,
            init_type=self._init_type,
            layer_root=layers,
            tmp_dir=self._tmp_dir,
            runtime_api=self._server.address,
            defaults=self._defaults,
        )
        output = self._output = OutputPipe()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(bootstrap),
                cwd=self.config.code_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output.write_fd,
                stderr=output.write_fd,
                start_new_session=True,  # a group of its own, so a kill takes its children too
            )
        except OSError as exc:
            # Go's wording, as Lambda reports it: "fork/exec /var/task/bootstrap: permission denied".
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            reason = reason[:1].lower() + reason[1:]
            self._fail(_Failure(INVALID_ENTRYPOINT, f"fork/exec {bootstrap}: {reason}"))
            return
        finally:
            output.close_write_end()
        output.start_reading()
        self._exited = asyncio.ensure_future(self._proc.wait())
        self._exited.add_done_callback(self._on_exit)

    async def wait_ready(self) -> bool:
        """Wait for the init phase to end: True once the runtime polls `/next`, False if it failed."""
        if self._exited is None:
            return False
        settled = asyncio.ensure_future(self._server.settled.wait())
        try:
            await asyncio.wait({settled, self._exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()
        return self._server.init_error is None and self.state is not EnvState.DEAD

    async def invoke(self, invocation: Invocation, sink: ChunkSink | None = None) -> EnvResult:
        """Run one invocation. Function failures are in the result; a failing `sink`'s own error is
        raised once the runtime has finished the invocation."""
        if not self._started:
            raise FogbankError(f"environment {self.env_id} was never started")
        if self.state is EnvState.BUSY:
            raise FogbankError(f"environment {self.env_id} is already running an invocation")
        if self._exited is None or self.state is EnvState.DEAD:
            return await self._lost(invocation, None, time.monotonic())
        self.state = EnvState.BUSY
        began = time.monotonic()
        handover = self._server.dispatch(invocation, sink)
        watcher = asyncio.ensure_future(self._watch_memory())
        timeout = max(0.0, invocation.deadline_ms / 1000 - time.time())
        waiters: set[asyncio.Future[Any]] = {handover.reply, self._exited}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The runtime is still working on an invocation nobody waits for: it cannot be
            # trusted with another one.
            self.state = EnvState.DEAD
            self._signal(signal.SIGKILL)
            raise
        finally:
            watcher.cancel()
            self.last_used = time.monotonic()
        if handover.reply.done():
            reply = handover.reply.result()
            if reply.kind is ReplyKind.INIT_ERROR or self._exited.done():
                return await self._lost(invocation, handover, began, reply)
            return self._answered(handover, reply)
        if not self._exited.done():
            timed_out = f"Task timed out after {self.config.timeout_s:.2f} seconds"
            self._fail(_Failure(TIMED_OUT, timed_out))
        return await self._lost(invocation, handover, began)

    def _answered(self, handover: Handover, reply: RuntimeReply) -> EnvResult:
        result = EnvResult(
            payload=reply.body,
            error_type=reply.error_type,
            output=self._take_output(),
            duration_ms=(reply.received_at - (handover.handed_at or reply.received_at)) * 1000,
            max_memory_mb=self._peak_mb(),
            init_duration_ms=self._take_init_duration(),
            streamed=reply.streamed,
        )
        self.state = EnvState.IDLE
        if handover.sink_error is not None:
            raise handover.sink_error
        return result

    async def _lost(
        self,
        invocation: Invocation,
        handover: Handover | None,
        began: float,
        reply: RuntimeReply | None = None,
    ) -> EnvResult:
        """The result of an invocation the environment does not survive; then stop it."""
        self.state = EnvState.DEAD
        self._server.abandon()
        await self._kill_and_reap()
        reply = reply or self._server.init_error
        output = self._take_output()
        if reply is not None:
            payload, error_type = reply.body, reply.error_type
        else:
            failure = self._failure or _Failure(EXIT_ERROR, describe_exit(0))
            payload, error_type = failure.document(invocation.request_id), failure.error_type
            if failure.error_type == OUT_OF_MEMORY:
                note = (
                    f"fogbank: the runtime used more than MemorySize ({self.config.memory_mb} MB)"
                )
                output += f"{note} and was killed\n".encode()
        start = handover.handed_at if handover and handover.handed_at else began
        result = EnvResult(
            payload=payload,
            error_type=error_type,
            output=output,
            duration_ms=(time.monotonic() - start) * 1000,
            max_memory_mb=self._peak_mb(),
            init_duration_ms=self._take_init_duration(),
            env_lost=True,
            streamed=reply.streamed if reply else False,
        )
        await self.stop()
        return result

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after a short grace, release port and /tmp."""
        if self._stopped:
            return
        self._stopped = True
        self.state = EnvState.DEAD
        if self._exited is not None and not self._exited.done():
            self._signal(signal.SIGTERM)
            done, _ = await asyncio.wait({self._exited}, timeout=self._grace)
            if not done:
                await self._kill_and_reap()
        self._signal(signal.SIGKILL)  # whatever the bootstrap left running in its group
        await self._server.close()
        if self._output is not None:
            self._output.close()
        await asyncio.to_thread(shutil.rmtree, self._tmp_dir, True)

    async def _kill_and_reap(self) -> None:
        if self._exited is None:
            return
        if not self._exited.done():
            self._signal(signal.SIGKILL)
        # Bounded: a process stuck in the kernel must not hang the caller too.
        await asyncio.wait({self._exited}, timeout=_REAP_TIMEOUT_S)
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        # The group may be gone already, or (PermissionError) its id reused by another user.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def _fail(self, failure: _Failure) -> None:
        if self._failure is None:
            self._failure = failure
        if self.state is EnvState.STARTING:
            self.state = EnvState.DEAD

    def _on_initialised(self) -> None:
        if self.state is EnvState.STARTING:
            self.state = EnvState.IDLE

    def _on_exit(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        self._fail(_Failure(EXIT_ERROR, describe_exit(task.result())))
        if self.state is not EnvState.BUSY:
            self.state = EnvState.DEAD

    async def _watch_memory(self) -> None:
        """Poll RSS while busy; past `MemorySize`, kill the process as Lambda's cgroup would."""
        if self._proc is None:
            return
        limit_kb = self.config.memory_mb * 1024
        while (usage := tree_memory(self._proc.pid)) is not None:
            rss, peak = usage
            self._peak_kb = max(self._peak_kb, peak)
            if rss > limit_kb:
                self._fail(_Failure(OUT_OF_MEMORY, describe_exit(-signal.SIGKILL)))
                self._signal(signal.SIGKILL)
                return
            await asyncio.sleep(MEMORY_POLL_S)

    def _peak_mb(self) -> int:
        if self._proc is not None and self._proc.returncode is None:
            usage = tree_memory(self._proc.pid)
            if usage is not None:
                self._peak_kb = max(self._peak_kb, usage[1])
        return math.ceil(self._peak_kb / 1024)

    def _take_output(self) -> bytes:
        return self._output.take() if self._output is not None else b""

    def _take_init_duration(self) -> float | None:
        """The init phase, spawn to first `/next` (or to its failure), reported once."""
        if self._init_reported:
            return None
        self._init_reported = True
        end = self._server.first_next_at
        if end is None and self._server.init_error is not None:
            end = self._server.init_error.received_at
        if end is None:
            end = self._failure.at if self._failure is not None else time.monotonic()
        return (end - self._spawned_at) * 1000
