"""The front's handle on a zygote: start it, ask it to fork environments, learn how they exit."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import itertools
import json
import logging
import os
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fogbank._errors import FogbankError
from fogbank.functions._fogbank_runtime import protocol

log = logging.getLogger("fogbank.functions")

RUNTIME_PARENT = str(Path(__file__).parent)
# An interpreter with heavy preloads can take seconds; a fork answers in milliseconds.
START_TIMEOUT_S = 60.0
FORK_TIMEOUT_S = 10.0

_LAUNCHER = (
    "import sys, json; sys.path.insert(0, sys.argv[3]); "
    "from _fogbank_runtime.zygote import main; main(int(sys.argv[1]), json.loads(sys.argv[2]))"
)


def exit_code(status: dict[str, int] | None) -> int:
    """The zygote's report of how an environment ended, as a `returncode` (-N for signal N).

    No report (the zygote itself is gone) counts as killed.
    """
    if status is None:
        return -signal.SIGKILL
    if "signal" in status:
        return -status["signal"]
    return status.get("code", 1)


class ZygoteError(FogbankError):
    """A zygote could not be started or stopped answering."""


@dataclass(slots=True)
class Forked:
    """A freshly forked environment: its pid, our end of its socket, and its output file."""

    pid: int
    sock: socket.socket
    log_fd: int
    exited: asyncio.Future[dict[str, int]]


class Zygote:
    """One warm parent process per interpreter and layer set."""

    def __init__(
        self,
        interpreter: str,
        layer_paths: Sequence[str],
        preload: Sequence[str] = (),
        *,
        private_tmp: bool = True,
    ) -> None:
        self.interpreter = interpreter
        self.private_tmp = private_tmp
        self.layer_paths = list(layer_paths)
        self.preload = list(preload)
        self.python_version = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[int, asyncio.Future[dict[str, int]]]]] = {}
        self._exits: dict[int, asyncio.Future[dict[str, int]]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        options = json.dumps(
            {
                "layer_paths": self.layer_paths,
                "preload": self.preload,
                "private_tmp": self.private_tmp,
            }
        )
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.interpreter,
                "-c",
                _LAUNCHER,
                str(theirs.fileno()),
                options,
                RUNTIME_PARENT,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"cannot start interpreter {self.interpreter}: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except (TimeoutError, EOFError) as exc:
            await self.stop()
            raise ZygoteError(f"zygote for {self.interpreter} did not start: {exc!r}") from exc

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._on_lost()
            return
        self._buf += data
        size = protocol.PRELUDE.size
        while len(self._buf) >= size:
            kind, head_len, body_len = protocol.PRELUDE.unpack_from(self._buf)
            end = size + head_len + body_len
            if len(self._buf) < end:
                return
            head = protocol.unpack_header(bytes(self._buf[size : size + head_len]))
            del self._buf[:end]
            self._dispatch(kind, head)

    def _dispatch(self, kind: int, head: dict[str, Any]) -> None:
        if kind == protocol.READY and self._ready is not None and not self._ready.done():
            self.python_version = str(head.get("python", ""))
            self._ready.set_result(None)
        elif kind == protocol.FORKED:
            pid = int(head["pid"])
            # Registered now, not when fork() resumes: the child may exit before that.
            exited: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
            self._exits[pid] = exited
            fut = self._pending.pop(int(head["id"]), None)
            if fut is not None and not fut.done():
                fut.set_result((pid, exited))
        elif kind == protocol.EXITED:
            pid = int(head.pop("pid"))
            exit_fut = self._exits.pop(pid, None)
            if exit_fut is not None and not exit_fut.done():
                exit_fut.set_result({k: int(v) for k, v in head.items()})

    def _on_lost(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
        err = EOFError("zygote exited")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(err)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ZygoteError("zygote exited while forking"))
        self._pending.clear()
        for exit_fut in self._exits.values():
            if not exit_fut.done():
                exit_fut.set_result({"signal": 9})
        self._exits.clear()

    async def fork(self, spec: dict[str, Any]) -> Forked:
        """Fork one environment that will run `spec` (see `environment.serve`)."""
        if self._sock is None or not self.alive:
            raise ZygoteError("zygote is not running")
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_fd = os.memfd_create("fogbank-env-output", os.MFD_CLOEXEC)
        # Appending writes let the front truncate the output buffer between invocations.
        fcntl.fcntl(log_fd, fcntl.F_SETFL, fcntl.fcntl(log_fd, fcntl.F_GETFL) | os.O_APPEND)
        req_id = next(self._ids)
        fut: asyncio.Future[tuple[int, asyncio.Future[dict[str, int]]]] = loop.create_future()
        self._pending[req_id] = fut
        frame = protocol.pack(protocol.FORK, {"id": req_id, "spec": spec})
        fds = array.array("i", [theirs.fileno(), log_fd])
        try:
            async with self._lock:
                await self._send_with_fds(frame, fds)
            pid, exited = await asyncio.wait_for(fut, FORK_TIMEOUT_S)
        except BaseException:
            self._pending.pop(req_id, None)
            ours.close()
            os.close(log_fd)
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return Forked(pid=pid, sock=ours, log_fd=log_fd, exited=exited)

    async def _send_with_fds(self, frame: bytes, fds: array.array[int]) -> None:
        assert self._sock is not None
        sock = self._sock
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())]
        while True:
            try:
                sent = sock.sendmsg([frame], anc)
                break
            except BlockingIOError:
                await asyncio.sleep(0.001)
        if sent < len(frame):
            await asyncio.get_running_loop().sock_sendall(sock, frame[sent:])

    async def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        proc = self._proc
        if proc is not None and proc.returncode is None:
            # Closing the socket makes the zygote kill its children and exit; make sure.
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._on_lost_quietly()

    def _on_lost_quietly(self) -> None:
        for exit_fut in self._exits.values():
            if not exit_fut.done():
                exit_fut.set_result({"signal": 9})
        self._exits.clear()
