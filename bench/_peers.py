"""The servers `bench/gateway.py` measures: how to install, start, probe and stop each of them.

Every server serves the same hello world (`{"hello": "world"}`, JSON, status 200). Peers that are
not fogbank's own dependencies live in `bench/.peers/` (gitignored), each in its own venv or npm
folder, so installing them never changes what the project's venv resolves to.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
HOST = "127.0.0.1"

# The raw ASGI baseline. It handles lifespan itself so that neither server logs a lifespan error
# (uvicorn's "auto" mode and granian both send lifespan events).
ASGI_APP = """\
BODY = b'{"hello": "world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""

# One Lambda handler for every emulator. A 1.0-shaped proxy response is valid for both payload
# versions, so the HTTP API and the REST API rows run identical user code.
LAMBDA_HANDLER = """\
import json

BODY = json.dumps({"hello": "world"})


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": BODY}
"""

SLS_CONFIG = """\
service: fogbank-bench
frameworkVersion: "3"
provider:
  name: aws
  runtime: python3.11
  region: us-east-1
functions:
  hello:
    handler: handler.handler
    events:
      - httpApi:
          path: /hello
          method: get
plugins:
  - serverless-offline
"""

# serverless-offline 13 is the last line that runs with Serverless 3; Serverless 4 needs a login
# and downloads a binary at start-up, which this machine's network does not allow.
SLS_PACKAGES = ("serverless@3", "serverless-offline@13")


class PeerError(Exception):
    """A server could not be installed, started or reached; the message is the row's reason."""


@dataclass(frozen=True, slots=True)
class Target:
    """One row of the table: a URL on a server, and the connection modes to measure it in."""

    name: str
    url: str
    modes: tuple[str, ...] = ("keep-alive",)
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request to this target, by the probe and by wrk (an API key, a token)."""
    before: Callable[[], str] | None = None
    """Run after the probe, before measuring: checks that the route refuses what it must refuse;
    its answer goes in the row's note, a `PeerError` means the row is not measured."""
    after: Callable[[], str] | None = None
    """Run after measuring: checks what happened during the run (a function that must have run
    once); its answer is the row's note, a `PeerError` a failed check noted on the row."""


@dataclass(frozen=True, slots=True)
class Server:
    """How to start one server process and how to tell that it has finished starting."""

    label: str
    argv: list[str]
    cwd: Path
    targets: tuple[Target, ...]
    ready_port: int
    """Accepting connections here means start-up is over (fogbank: its control port)."""
    start_timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """What every server builder needs: where peers live, a scratch folder, whether to install."""

    peers: Path
    work: Path
    install: bool
    on_cores: Callable[[int], list[str]]
    """`taskset -c N` (or nothing on a one-core machine), prefixed to a server's command."""
    helpers: contextlib.ExitStack
    """Closed when the server stops: what a builder starts beside it (fogbank's JWKS issuer)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run_logged(argv: list[str], cwd: Path, what: str, log: Path) -> None:
    print(f"  installing {what} ...", flush=True)
    with log.open("ab") as out:
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise PeerError(f"installing {what} failed ({_last_line(log)}); see {log}")


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return lines[-1][:160] if lines else "no output"


def _venv(ctx: Context, name: str, requirement: str, binary: str) -> Path:
    """A venv at peers/NAME holding `requirement`; returns the path of its `binary`."""
    root = ctx.peers / name
    exe = root / "bin" / binary
    if exe.exists():
        return exe
    if not ctx.install:
        raise PeerError(f"not installed in {root} (run without --skip-install)")
    ctx.peers.mkdir(parents=True, exist_ok=True)
    log = ctx.peers / f"{name}-install.log"
    _run_logged([sys.executable, "-m", "venv", str(root)], ctx.peers, f"a venv for {name}", log)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run_logged([*pip, "--disable-pip-version-check", requirement], root, requirement, log)
    if not exe.exists():
        raise PeerError(f"{requirement} installed no {binary}; see {log}")
    return exe


def dist_version(python: Path, dist: str) -> str:
    """The installed version of a distribution in another interpreter's environment."""
    if not python.exists():
        return "?"
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "?"


def granian(ctx: Context) -> Server:
    # uvloop as in the uvicorn baseline: both raw rows then run the same event loop.
    exe = _venv(ctx, "granian", "granian[uvloop]", "granian")
    (ctx.work / "hello_asgi.py").write_text(ASGI_APP)
    port = free_port()
    argv = [*ctx.on_cores(0), str(exe), "--interface", "asgi", "--host", HOST, "--port", str(port)]
    # HTTP/1 only, as wrk and the uvicorn baseline speak: spares the HTTP/2 preface sniffing.
    argv += ["--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "hello_asgi:app"]
    url = f"http://{HOST}:{port}/"
    return Server("granian", argv, ctx.work, (Target("granian", url),), port)


def uvicorn(ctx: Context) -> Server:
    (ctx.work / "hello_asgi.py").write_text(ASGI_APP)
    port = free_port()
    argv = [*ctx.on_cores(0), sys.executable, "-m", "uvicorn", "hello_asgi:app", "--host", HOST]
    argv += ["--port", str(port), "--http", "httptools", "--loop", "uvloop", "--ws", "none"]
    argv += ["--no-access-log", "--log-level", "warning"]
    url = f"http://{HOST}:{port}/"
    return Server("uvicorn", argv, ctx.work, (Target("uvicorn", url),), port)


def chalice(ctx: Context) -> Server:
    exe = _venv(ctx, "chalice", "chalice", "chalice")
    project = ctx.peers / "chalice" / "helloapp"
    if not (project / "app.py").exists():
        # `new-project` writes an app whose `/` route already returns {"hello": "world"}.
        log = ctx.peers / "chalice-install.log"
        _run_logged([str(exe), "new-project", project.name], project.parent, "a chalice app", log)
    port = free_port()
    # --no-autoreload: one process, rather than a file-watcher parent restarting a server child
    # that share core 0 (worth ~4% here); the peer is measured at its best.
    argv = [*ctx.on_cores(0), str(exe), "local", "--host", HOST, "--port", str(port)]
    argv += ["--no-autoreload"]
    modes = ("keep-alive", "close")
    target = Target("chalice", f"http://{HOST}:{port}/", modes)
    return Server("chalice local", argv, project, (target,), port)


def serverless_offline(ctx: Context) -> Server:
    root = ctx.peers / "sls"
    exe = root / "node_modules" / ".bin" / "serverless"
    if not (exe.exists() and (root / "node_modules" / "serverless-offline").is_dir()):
        if not ctx.install:
            raise PeerError(f"not installed in {root} (run without --skip-install)")
        root.mkdir(parents=True, exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *SLS_PACKAGES]
        _run_logged(npm, root, " ".join(SLS_PACKAGES), ctx.peers / "sls-install.log")
    (root / "serverless.yml").write_text(SLS_CONFIG)
    (root / "handler.py").write_text(LAMBDA_HANDLER)
    port, lambda_port = free_port(), free_port()
    # The binary, not `npx`, so that nothing asks the registry at start-up.
    argv = [*ctx.on_cores(0), str(exe), "offline", "start", "--host", HOST]
    argv += ["--httpPort", str(port), "--lambdaPort", str(lambda_port), "--noPrependStageInUrl"]
    env = {
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    target = Target("serverless-offline", f"http://{HOST}:{port}/hello", ("keep-alive", "close"))
    return Server("serverless-offline", argv, root, (target,), port, start_timeout=120.0, env=env)


def npm_version(package: str) -> str:
    manifest = PEERS_DIR / "sls" / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"


class Running:
    """A started server in its own process group; leaving the `with` block kills the whole group.

    Each server gets its own session so that granian's workers, chalice's threads and the Python
    children serverless-offline spawns all die with it, and a Ctrl-C on the terminal reaches only
    this script, which then stops the servers in order.
    """

    def __init__(self, server: Server, log: Path) -> None:
        self.server = server
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                server.argv,
                cwd=server.cwd,
                env={**os.environ, **server.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _exited(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"exited with code {code}: {_last_line(self.log)}"

    def wait_started(self) -> None:
        deadline = time.monotonic() + self.server.start_timeout
        while time.monotonic() < deadline:
            if reason := self._exited():
                raise PeerError(reason)
            try:
                with socket.create_connection((HOST, self.server.ready_port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise PeerError(f"not listening after {self.server.start_timeout:.0f} s; see {self.log}")

    def probe(self, target: Target, grace: float = 5.0) -> None:
        """Wait until `target` answers 200 with the hello body; the last failure is the reason."""
        deadline = time.monotonic() + grace
        reason = "no answer"
        while time.monotonic() < deadline:
            if exited := self._exited():
                raise PeerError(exited)
            reason = _get(target.url, target.headers)
            if not reason:
                return
            time.sleep(0.2)
        raise PeerError(f"GET {target.url}: {reason} ({grace:.0f} s after start-up)")

    def stop(self) -> None:
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        # Also after a clean exit of the leader: children it spawned may linger in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait()


def request(url: str, headers: tuple[tuple[str, str], ...] = ()) -> tuple[int, bytes]:
    """GET `url` once, on a fresh connection: (status, body); `OSError` if it cannot."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path or "/", headers=dict(headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc!r}") from exc
    finally:
        conn.close()


def _get(url: str, headers: tuple[tuple[str, str], ...] = ()) -> str:
    """'' if `url` answers 200 with the hello body, else why not."""
    try:
        status, body = request(url, headers)
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return f"failed: {exc!r}"
    if status != 200 or b"hello" not in body:
        return f"answered {status} {body[:100]!r}"
    return ""


def _stat_fields(pid: int) -> list[str]:
    # The fields after the command, whose name may hold spaces and parentheses.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_ticks(pid: int) -> int:
    """User and system CPU of one process so far, in clock ticks (fields 14 and 15)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12])


def process_tree(root: int) -> dict[int, int]:
    """CPU ticks of `root` and of every process descending from it, by pid."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    ticks = {}
    for pid in tree:
        with contextlib.suppress(OSError, IndexError, ValueError):
            ticks[pid] = cpu_ticks(pid)
    return ticks
