"""The main loop of one Python execution environment, in the process forked from a zygote."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import socket
import sys
import tempfile
import time
from typing import Any

from . import protocol
from .context import RUNTIME_VARIABLES, LambdaContext
from .handler import (
    Fault,
    Handler,
    error_document,
    error_log_text,
    is_stream,
    iterate,
    load_handler,
    marshal,
)

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2


def private_mounts() -> bool:
    """Give the calling process (the zygote) a mount namespace with private propagation.

    Environments then copy a mount tree that shares no peer group with the host's, so creating
    one costs the same with ten or ten thousand environments alive (with shared propagation,
    every new namespace joins the host's peer groups and each one costs more than the last).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNS) != 0:
            return False
        return bool(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0)
    except (OSError, AttributeError):
        return False


def _private_tmp(tmp_dir: str, keep: list[str]) -> bool:
    """Mount this environment's own directory over `/tmp`, when the kernel lets us.

    A mount namespace needs CAP_SYS_ADMIN, or an unprivileged user namespace. Where neither is
    available the environment still gets its own TMPDIR, which `tempfile` honours. `keep` names
    entries of the host's `/tmp` that must stay visible (the code, a virtualenv or the state
    directory may live there); they are bound back into the private `/tmp` at the same paths.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(_CLONE_NEWNS) != 0:
            if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
                return False
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"{gid} {gid} 1")
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            return False
        host_tmp = os.open("/tmp", os.O_PATH | os.O_DIRECTORY)
        try:
            if libc.mount(tmp_dir.encode(), b"/tmp", None, _MS_BIND, None) != 0:
                return False
            for name in keep:
                target = os.path.join("/tmp", name)
                os.makedirs(target, exist_ok=True)
                source = f"/proc/self/fd/{host_tmp}/{name}"
                if libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None):
                    libc.umount2(b"/tmp", _MNT_DETACH)
                    return False
        finally:
            os.close(host_tmp)
        return True
    except (OSError, AttributeError):
        return False


def _tmp_entries(paths: list[str]) -> list[str]:
    """The top-level names under the host's `/tmp` that hold any of `paths`."""
    names = set()
    for path in paths:
        real = os.path.realpath(path)
        if real.startswith("/tmp/"):
            names.add(real[len("/tmp/") :].split("/", 1)[0])
    return sorted(names)


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _setup_logging(filt: _RequestIdFilter) -> None:
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(filt)
    root = logging.getLogger()
    root.handlers = [handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level and level.upper() in logging._nameToLevel:
        root.setLevel(level.upper())


def _apply(spec: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(spec["env"])
    code_dir = spec["code_dir"]
    os.chdir(code_dir)
    base: list[str] = [p for p in sys.path if p not in spec["layer_paths"]]
    sys.path[:] = [code_dir, *spec["layer_paths"], *base]
    tempfile.tempdir = None
    if spec.get("private_tmp"):
        needed = [p for p in sys.path if p] + [sys.prefix, sys.executable, code_dir]
        needed += spec.get("keep", [])
        _private_tmp(spec["tmp_dir"], _tmp_entries(needed))


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 0.5)


def _flush() -> None:
    # try/except, not contextlib.suppress: this runs after every invocation.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            continue


class _Runner:
    def __init__(self, sock: socket.socket, spec: dict[str, Any]) -> None:
        self.sock = sock
        self.memory_mb = int(spec["env"].get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.filter = _RequestIdFilter()
        self.handler: Handler | None = None
        env = os.environ
        self.runtime_variables = {name: env[name] for name in RUNTIME_VARIABLES if name in env}

    def init(self, handler_spec: str) -> None:
        _setup_logging(self.filter)
        started = time.perf_counter()
        try:
            self.handler = load_handler(handler_spec)
        except BaseException as exc:  # init failures of any kind are reported, never raised
            _, doc = error_document(exc)
            sys.stdout.write(error_log_text(doc))
            _flush()
            init_ms = (time.perf_counter() - started) * 1000
            protocol.send_frame(self.sock, protocol.INIT_ERROR, {"init_ms": init_ms, "error": doc})
            os._exit(1)
        init_ms = (time.perf_counter() - started) * 1000
        protocol.send_frame(self.sock, protocol.READY, {"init_ms": init_ms})

    def invoke(self, head: dict[str, Any], body: bytes) -> None:
        request_id = head["id"]
        self.filter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = head.get("trace", "")
        assert self.handler is not None
        error_type: str | None = None
        streamed = False
        started = time.perf_counter()
        try:
            context = LambdaContext(
                request_id,
                head["deadline"],
                head["arn"],
                head.get("client_context"),
                head.get("identity"),
                head.get("tenant"),
                self.runtime_variables,
            )
            try:
                event = protocol.loads(body) if body else {}
            except ValueError as exc:
                raise Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None
            result = self.handler(event, context)
            if is_stream(result):
                streamed = True
                for chunk in iterate(result):
                    if chunk:
                        protocol.send_frame(self.sock, protocol.CHUNK, None, chunk)
                payload = b""
            else:
                payload = marshal(result)
        except BaseException as exc:  # the handler's failures are results, never crashes
            if isinstance(exc, SystemExit):
                raise
            error_type, doc = error_document(exc, request_id)
            sys.stdout.write(error_log_text(doc))
            payload = json.dumps(doc).encode()
        duration_ms = (time.perf_counter() - started) * 1000
        _flush()
        used = _max_memory_mb()
        over = used > self.memory_mb
        if over:
            error_type = "Runtime.OutOfMemory"
            payload = (
                b'{"errorType": "Runtime.OutOfMemory", "errorMessage": "RequestId: '
                + request_id.encode()
                + b" Error: Runtime exited with error: signal: killed (memory size "
                + str(self.memory_mb).encode()
                + b' MB exceeded)"}'
            )
        header: dict[str, Any] = {"ms": duration_ms, "mem": used}
        if error_type:
            header["error"] = error_type
        if streamed:
            header["streamed"] = True
        if over:
            header["lost"] = True
        protocol.send_frame(self.sock, protocol.RESULT, header, payload)
        if over:
            os._exit(137)


def serve(sock_fd: int, log_fd: int, spec: dict[str, Any]) -> None:
    """Run forever in a freshly forked child; never returns."""
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sock = socket.socket(fileno=sock_fd)
        sock.setblocking(True)
        _apply(spec)
        runner = _Runner(sock, spec)
        runner.init(spec["handler"])
        frames = protocol.FrameReader(sock)
        while True:
            kind, head, body = frames.read()
            if kind == protocol.INVOKE:
                runner.invoke(head, body)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        os._exit(0)
    except SystemExit as exc:
        _flush()
        code = exc.code if isinstance(exc.code, int) else 1
        os._exit(code)
    finally:
        _flush()
        os._exit(1)
