"""The front's side of one Python execution environment, forked from a zygote."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any, cast

import orjson

from fogbank.functions._fogbank_runtime import protocol
from fogbank.functions._runtime_process import describe_exit
from fogbank.functions._types import ChunkSink, EnvResult, EnvState, Invocation
from fogbank.functions._zygote import Forked, Zygote, exit_code
from fogbank.model import FunctionConfig

# How long to wait for the zygote's word on how a vanished environment exited.
_EXIT_STATUS_WAIT_S = 1.0
# Lambda gives the init phase 10 s of its own for on-demand environments.
INIT_TIMEOUT_S = 10.0


def error_payload(error_type: str, message: str) -> bytes:
    return orjson.dumps({"errorType": error_type, "errorMessage": message})


def timeout_result(invocation: Invocation, timeout_s: int, output: bytes) -> EnvResult:
    message = (
        f"RequestId: {invocation.request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    )
    return EnvResult(
        payload=error_payload("Sandbox.Timedout", message),
        error_type="Sandbox.Timedout",
        output=output,
        duration_ms=timeout_s * 1000.0,
        env_lost=True,
    )


def read_memory_mb(pid: int) -> int:
    """Resident set size of a process in MB, from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


class _Channel(asyncio.Protocol):
    """Our end of an environment's socket: frames parsed as bytes arrive, handed to one reader.

    A protocol rather than asyncio streams: an invocation then costs one write, one wake-up and
    one parse, with no coroutine per `readexactly`.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.frames: collections.deque[tuple[int, dict[str, Any], bytes]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses: cast, not assert.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        size = protocol.PRELUDE.size
        while len(buf) >= size:
            kind, head_len, body_len = protocol.PRELUDE.unpack_from(buf)
            end = size + head_len + body_len
            if len(buf) < end:
                break
            head = orjson.loads(buf[size : size + head_len]) if head_len else {}
            self.frames.append((kind, head, bytes(buf[size + head_len : end])))
            del buf[:end]
        if self.frames:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def expire(self) -> None:
        """The invocation's deadline passed (called by a loop timer)."""
        self.timed_out = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_frame(self) -> tuple[int, dict[str, Any], bytes]:
        while not self.frames:
            if self.timed_out:
                raise TimeoutError
            if self.closed:
                raise ConnectionResetError("environment closed its socket")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.frames.popleft()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise ConnectionResetError("environment closed its socket")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PythonEnvironment:
    """One forked process running one invocation at a time over a framed Unix socket."""

    def __init__(
        self,
        config: FunctionConfig,
        *,
        zygote: Zygote,
        env: dict[str, str],
        tmp_dir: Path,
        private_tmp: bool,
        tenant_id: str | None = None,
        env_id: str | None = None,
    ) -> None:
        self.env_id = env_id or uuid.uuid4().hex
        self.config = config
        self.tenant_id = tenant_id
        self.state = EnvState.STARTING
        self.last_used = time.monotonic()
        self.provisioned = False
        self.oom_killed = False
        self._zygote = zygote
        self._env = env
        self._tmp_dir = tmp_dir
        self._private_tmp = private_tmp
        self._forked: Forked | None = None
        self._channel = _Channel()
        self._init_ms: float | None = None
        self._init_error: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        return self._forked.pid if self._forked else None

    async def start(self) -> None:
        """Fork the process and wait for its init phase (the handler import) to finish."""
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "env": self._env,
            "code_dir": str(self.config.code_dir),
            "handler": self.config.handler,
            "tmp_dir": str(self._tmp_dir),
            "private_tmp": self._private_tmp,
            # Paths the environment must still see if they live under the host's /tmp.
            "keep": [str(self._tmp_dir.parent)]
            + [str(layer.content_dir) for layer in self.config.layers],
        }
        self._forked = forked = await self._zygote.fork(spec)
        loop = asyncio.get_running_loop()
        await loop.create_unix_connection(lambda: self._channel, sock=forked.sock)
        try:
            kind, head, _ = await asyncio.wait_for(self._channel.next_frame(), INIT_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            status = await self._exit_status()
            self._init_error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Error: {describe_exit(exit_code(status))}",
            }
            self._init_ms = 0.0
            return
        self._init_ms = float(head.get("init_ms", 0.0))
        if kind == protocol.INIT_ERROR:
            self._init_error = head.get("error") or {}
        else:
            self.state = EnvState.IDLE

    def take_output(self) -> bytes:
        """Everything the process wrote since the last call; the buffer then starts again."""
        if self._forked is None or self._forked.log_fd < 0:
            return b""
        fd = self._forked.log_fd
        size = os.fstat(fd).st_size
        if not size:
            return b""
        data = os.pread(fd, size, 0)
        # The file is in O_APPEND mode, so once truncated the child's next write lands at 0.
        os.ftruncate(fd, 0)
        return data

    async def _exit_status(self) -> dict[str, int] | None:
        if self._forked is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._forked.exited), _EXIT_STATUS_WAIT_S)
        except TimeoutError:
            return None

    async def invoke(self, invocation: Invocation, sink: ChunkSink | None = None) -> EnvResult:
        if self._init_error is not None:
            return self._init_failure(invocation)
        self.state = EnvState.BUSY
        first = self._init_ms
        self._init_ms = None
        header = {
            "id": invocation.request_id,
            "deadline": invocation.deadline_ms,
            "arn": invocation.invoked_arn,
            "trace": invocation.trace_id,
        }
        if invocation.client_context is not None:
            header["client_context"] = invocation.client_context
        if invocation.cognito_identity is not None:
            header["identity"] = invocation.cognito_identity
        if invocation.tenant_id is not None:
            header["tenant"] = invocation.tenant_id
        remaining = invocation.deadline_ms / 1000.0 - time.time()
        channel = self._channel
        channel.timed_out = False
        timer = asyncio.get_running_loop().call_later(max(remaining, 0.0), channel.expire)
        try:
            channel.write(protocol.pack(protocol.INVOKE, header, invocation.payload))
            result = await self._collect(sink)
        except TimeoutError:
            self.kill()
            result = timeout_result(invocation, self.config.timeout_s, self.take_output())
        except ConnectionError:
            result = await self._lost(invocation)
        finally:
            timer.cancel()
        result.init_duration_ms = first
        self.last_used = time.monotonic()
        if result.env_lost:
            await self.stop()
        else:
            self.state = EnvState.IDLE
        return result

    async def _collect(self, sink: ChunkSink | None) -> EnvResult:
        chunks: list[bytes] = []
        while True:
            kind, head, body = await self._channel.next_frame()
            if kind == protocol.CHUNK:
                if sink is not None:
                    await sink(body)
                else:
                    chunks.append(body)
            elif kind == protocol.RESULT:
                payload = body
                if head.get("streamed") and sink is None:
                    payload = b"".join(chunks)
                return EnvResult(
                    payload=payload,
                    error_type=head.get("error"),
                    output=self.take_output(),
                    duration_ms=float(head.get("ms", 0.0)),
                    max_memory_mb=int(head.get("mem", 0)),
                    env_lost=bool(head.get("lost")),
                    streamed=bool(head.get("streamed")),
                )

    async def _lost(self, invocation: Invocation) -> EnvResult:
        status = await self._exit_status()
        output = self.take_output()
        prefix = f"RequestId: {invocation.request_id} Error: "
        if self.oom_killed:
            error_type = "Runtime.OutOfMemory"
            message = (
                f"{prefix}{describe_exit(-signal.SIGKILL)} (the environment exceeded its memory"
                f" size of {self.config.memory_mb} MB)"
            )
        else:
            error_type = "Runtime.ExitError"
            message = prefix + describe_exit(exit_code(status))
        return EnvResult(
            payload=error_payload(error_type, message),
            error_type=error_type,
            output=output,
            max_memory_mb=self.config.memory_mb if self.oom_killed else 0,
            env_lost=True,
        )

    def _init_failure(self, invocation: Invocation) -> EnvResult:
        doc = dict(self._init_error or {})
        error_type = str(doc.get("errorType", "Runtime.Unknown"))
        result = EnvResult(
            payload=orjson.dumps(doc),
            error_type=error_type,
            output=self.take_output(),
            env_lost=True,
        )
        result.init_duration_ms = self._init_ms
        return result

    def kill(self) -> None:
        """SIGKILL the environment's whole process group (the handler's children too)."""
        pid = self.pid
        if pid is not None and self.state is not EnvState.DEAD:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.state is EnvState.DEAD:
            return
        self.kill()
        self.state = EnvState.DEAD
        # Wait until the zygote has reaped it, so a stopped environment is really gone.
        await self._exit_status()
        self._channel.close()
        if self._forked is not None and self._forked.log_fd >= 0:
            os.close(self._forked.log_fd)
            self._forked.log_fd = -1
        shutil.rmtree(self._tmp_dir, ignore_errors=True)
