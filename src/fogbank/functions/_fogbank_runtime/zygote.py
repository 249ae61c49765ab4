"""A warm parent process that forks execution environments on request.

The zygote imports the runtime and any preloaded modules once; each fork then starts with them
already in memory (copy-on-write), which is what makes a cold start cost milliseconds.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import sys

from . import protocol

_FDS_PER_FORK = 2


class _Channel:
    """Buffered reads of frames that may carry file descriptors (SCM_RIGHTS)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.fds: list[int] = []

    def fill(self) -> None:
        fds = array.array("i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(
            1 << 20, socket.CMSG_SPACE(16 * fds.itemsize)
        )
        if not data:
            raise EOFError
        for level, ctype, cdata in ancdata:
            if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
        self.fds.extend(fds)
        self.buf += data

    def frames(self) -> list[tuple[int, protocol.Header, bytes]]:
        out = []
        size = protocol.PRELUDE.size
        while len(self.buf) >= size:
            kind, head_len, body_len = protocol.PRELUDE.unpack_from(self.buf)
            end = size + head_len + body_len
            if len(self.buf) < end:
                break
            head = protocol.unpack_header(bytes(self.buf[size : size + head_len]))
            body = bytes(self.buf[size + head_len : end])
            del self.buf[:end]
            out.append((kind, head, body))
        return out


def _exit_status(status: int) -> dict[str, int]:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1}


def _fork(
    ctl: socket.socket, wake_fds: tuple[int, int], spec: dict[str, object], fds: list[int]
) -> int:
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    # The child: forget everything that belongs to the zygote, then become the environment.
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        ctl.close()
        for fd in wake_fds:
            os.close(fd)
        os.setsid()
        from .environment import serve

        serve(fds[0], fds[1], spec)
    finally:
        os._exit(1)


def main(ctl_fd: int, options: dict[str, object]) -> None:
    # The launcher put our own parent directory first on sys.path; the handler must not see it.
    runtime_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != runtime_parent]
    layer_paths = [str(p) for p in options.get("layer_paths", [])]  # type: ignore[attr-defined]
    sys.path[0:0] = layer_paths
    from . import context, environment, handler  # noqa: F401  (warm them for every fork)

    if options.get("private_tmp"):
        environment.private_mounts()
    # Environments (and the zygote) run as batch work: a wake-up does not preempt the front, so
    # it goes on parsing and dispatching ready requests before the environments run. On one core
    # that cuts context switches per request and raised throughput by about a fifth.
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))

    for name in options.get("preload", []):  # type: ignore[attr-defined]
        try:
            importlib.import_module(str(name))
        except Exception as exc:  # a bad preload must not take the runtime down
            sys.stderr.write(f"fogbank zygote: cannot preload {name}: {exc}\n")

    ctl = socket.socket(fileno=ctl_fd)
    ctl.setblocking(True)
    channel = _Channel(ctl)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: dict[int, bool] = {}
    protocol.send_frame(ctl, protocol.READY, {"pid": os.getpid(), "python": sys.version.split()[0]})
    try:
        while True:
            readable, _, _ = select.select([ctl.fileno(), wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 4096)
                while children:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    children.pop(pid, None)
                    protocol.send_frame(ctl, protocol.EXITED, {"pid": pid, **_exit_status(status)})
            if ctl.fileno() in readable:
                channel.fill()
                for kind, head, _body in channel.frames():
                    if kind != protocol.FORK:
                        continue
                    fds = channel.fds[:_FDS_PER_FORK]
                    del channel.fds[:_FDS_PER_FORK]
                    layer_paths_for_env = layer_paths
                    spec = dict(head["spec"])
                    spec["layer_paths"] = layer_paths_for_env
                    pid = _fork(ctl, (wake_r, wake_w), spec, fds)
                    children[pid] = True
                    protocol.send_frame(ctl, protocol.FORKED, {"id": head["id"], "pid": pid})
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        for pid in list(children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
