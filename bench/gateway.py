"""Front-door throughput and latency: fogbank's API gateway against raw ASGI servers and peers.

Each server runs alone, pinned to core 0 (its children inherit the pin); `wrk` runs on core 1 and
measures throughput at 32 connections and latency at 1 connection. Rows, all serving the same
hello world:

- granian, uvicorn: a raw ASGI app, the ceiling for any Python front door;
- fogbank-http, fogbank-rest: a Lambda handler behind an HTTP API (payload 2.0) and a REST API
  (payload 1.0, stage Prod) served by `fogbank up`;
- fogbank-key, fogbank-cache, fogbank-jwt, fogbank-authorizer: the same handler behind API
  management (an API key with a usage plan and throttles, a stage cache hit, a JWT authorizer, a
  Lambda authorizer's cached result), served by the same `fogbank up` (see `_fogbank_rows`) and
  compared with the plain routes;
- fogbank-warm: the HTTP API route from a second `fogbank up --warm-first` (short invocations
  wait for a busy environment instead of starting one; docs/functions.md);
- chalice, serverless-offline: the peers, each measured with keep-alive and with
  `Connection: close`, and counted at its best mode.

Peers install into bench/.peers/ on first run. Run: .venv/bin/python bench/gateway.py [--help]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A sibling module of a script, not a package: found through the path set just above.
import _fogbank_rows
import _peers
from _peers import Context, PeerError, Running, Server, Target

# Builders in table order, with the rows each one yields (known before anything is installed, so
# that `--only` can skip installing what it does not measure).
PEERS: tuple[tuple[Callable[[Context], Server], tuple[str, ...]], ...] = (
    (_peers.granian, ("granian",)),
    (_peers.uvicorn, ("uvicorn",)),
    (_fogbank_rows.fogbank, _fogbank_rows.ROWS),
    (_fogbank_rows.fogbank_warm, _fogbank_rows.WARM_ROWS),
    (_peers.chalice, ("chalice",)),
    (_peers.serverless_offline, ("serverless-offline",)),
)
NAMES = tuple(name for _, names in PEERS for name in names)
SERVER_CORE, LOAD_CORE = 0, 1
CONNECTIONS = 32

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


@dataclass(frozen=True, slots=True)
class Wrk:
    """One wrk run, from its `--latency` report."""

    rps: float
    """Every answer a second, as wrk counts them."""
    ok_rps: float
    """2xx/3xx answers a second: what the table and the ratios show (a 429 is not served)."""
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    """Connect and write errors."""
    non_2xx: int
    read_errors: int
    """Also counts a server closing the connection after a complete response without having said
    `Connection: close` (chalice does): wrk notices at its next read, and reconnects."""
    timeouts: int
    """Requests wrk gave up on after 2 s; they are left out of its percentiles."""


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    mode: str
    many: Wrk | None = None
    """At 32 connections: throughput."""
    one: Wrk | None = None
    """At 1 connection: latency."""
    unavailable: str | None = None
    best: bool = True
    """The mode the ratios use: the one with the highest throughput, for peers measured in two."""
    note: str | None = None
    """What was checked around the run (a route's refusals, a function that ran once)."""
    cpu_us: float | None = None
    """CPU a request of the server's own process over the 32-connection run (/proc)."""
    children_cpu_us: float | None = None
    """The same for every process under it (fogbank's zygotes and environments, workers)."""


def parse_wrk(output: str) -> Wrk:
    rps, requests = _RPS.search(output), _REQUESTS.search(output)
    percentiles = {m[1]: float(m[2]) * _UNIT_MS[m[3]] for m in _PERCENTILE.finditer(output)}
    if not rps or not requests or set(percentiles) != {"50", "99"}:
        raise PeerError(f"unexpected wrk output: {output.strip()[-200:]!r}")
    found = _SOCKET.search(output)
    connect, read, write, timeout = (int(n) for n in found.groups()) if found else (0, 0, 0, 0)
    found_non_2xx = _NON_2XX.search(output)
    non_2xx = int(found_non_2xx[1]) if found_non_2xx else 0
    total, count = float(rps[1]), int(requests[1])
    ok_rps = total * (count - non_2xx) / count if count else 0.0
    p50, p99 = percentiles["50"], percentiles["99"]
    return Wrk(total, ok_rps, p50, p99, count, connect + write, non_2xx, read, timeout)


def on_cores(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


def run_wrk(target: Target, connections: int, seconds: int, close: bool) -> Wrk:
    argv = [*on_cores(LOAD_CORE), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["--timeout", "2s", *(["-H", "Connection: close"] if close else [])]
    for name, value in target.headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(target.url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise PeerError(f"wrk failed: {(done.stderr or done.stdout).strip()[-200:]}")
    result = parse_wrk(done.stdout)
    if result.requests == 0:
        raise PeerError("wrk completed no request")
    return result


def measure(target: Target, args: argparse.Namespace, root: int | None = None) -> list[Row]:
    """wrk at 32 connections, then 1, in each of the target's modes; with `root` (the server's
    pid), also the CPU a request of it and of its process tree over the 32-connection run."""
    # A warm-up at full concurrency lets lazy servers create their workers and caches before
    # anything is counted (serverless-offline starts one Python child per concurrent request).
    run_wrk(target, CONNECTIONS, args.warmup, target.modes[0] == "close")
    rows = []
    for mode in target.modes:
        print(f"  {target.name} ({mode}): {CONNECTIONS} connections, then 1", flush=True)
        before = _peers.process_tree(root) if root else {}
        many = run_wrk(target, CONNECTIONS, args.duration, mode == "close")
        cpu = _cpu_shares(root, before, many.requests) if root else (None, None)
        one = run_wrk(target, 1, args.duration, mode == "close")
        rows.append(Row(target.name, mode, many, one, cpu_us=cpu[0], children_cpu_us=cpu[1]))
    top = max(rows, key=lambda row: row.many.ok_rps if row.many else 0.0)
    return [replace(row, best=row is top) for row in rows]


def _cpu_shares(
    root: int, before: dict[int, int], requests: int
) -> tuple[float | None, float | None]:
    if not requests or root not in before:
        return None, None
    after = _peers.process_tree(root)
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    spent = {pid: ticks - before.get(pid, 0) for pid, ticks in after.items()}
    children = sum(ticks for pid, ticks in spent.items() if pid != root)
    return spent.get(root, 0) * tick_us / requests, children * tick_us / requests


def run_server(server: Server, names: list[str], args: argparse.Namespace) -> Iterator[Row]:
    logs = _peers.PEERS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{server.label.replace(' ', '-')}.log"
    print(f"{server.label}: starting", flush=True)
    with Running(server, log) as running:
        try:
            running.wait_started()
        except PeerError as exc:
            yield from (Row(name, "-", unavailable=str(exc)) for name in names)
            return
        for target in server.targets:
            if target.name not in names:
                continue
            try:
                running.probe(target)
                checked = target.before() if target.before else None
                measured = measure(target, args, running.proc.pid)
            except PeerError as exc:
                yield Row(target.name, "-", unavailable=str(exc))
                continue
            note = "; ".join(n for n in (checked, _after(target)) if n) or None
            yield from (replace(row, note=note) for row in measured)


def _after(target: Target) -> str | None:
    if target.after is None:
        return None
    try:
        return target.after()
    except PeerError as exc:
        return f"CHECK FAILED: {exc}"


def run_all(args: argparse.Namespace, work: Path) -> list[Row]:
    rows: list[Row] = []
    for build, names in PEERS:
        wanted = [name for name in names if name in args.only]
        if not wanted:
            continue
        # What a builder starts beside its server stops with it.
        with contextlib.ExitStack() as helpers:
            ctx = Context(_peers.PEERS_DIR, work, not args.skip_install, on_cores, helpers)
            try:
                server = build(ctx)
            except PeerError as exc:
                rows += [Row(name, "-", unavailable=str(exc)) for name in wanted]
                continue
            rows += run_server(server, wanted, args)
    return rows


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wrk": (wrk.stdout.splitlines() or ["?"])[0].split(" [")[0],
    }


def versions() -> dict[str, str]:
    peers = _peers.PEERS_DIR
    found = {
        "fogbank": metadata.version("fogbank"),
        "uvicorn": metadata.version("uvicorn"),
        "granian": _peers.dist_version(peers / "granian" / "bin" / "python", "granian"),
        "chalice": _peers.dist_version(peers / "chalice" / "bin" / "python", "chalice"),
        "serverless": _peers.npm_version("serverless"),
        "serverless-offline": _peers.npm_version("serverless-offline"),
    }
    return {name: version for name, version in found.items() if version != "?"}


def command_line() -> str:
    python = os.path.relpath(sys.executable)
    return shlex.join([python if not python.startswith("..") else "python", *sys.argv])


Pair = tuple[Wrk, Wrk]
"""A row's results at 32 connections and at 1."""


def _best(rows: list[Row], name: str) -> Pair | None:
    """The (32 connections, 1 connection) results of `name` in its best mode, if measured."""
    for row in rows:
        if row.name == name and row.best and row.many and row.one:
            return row.many, row.one
    return None


def _rps(fog: Pair, peer: Pair) -> float:
    return fog[0].ok_rps / peer[0].ok_rps


def _p50_gap(fog: Pair, peer: Pair) -> float:
    return fog[1].p50_ms - peer[1].p50_ms


# The targets: how close fogbank's plain routes come to a raw ASGI server, and how far past
# chalice they get. (label, peer row, how, sense, goal); `{}` in the label is the fogbank row.
TARGETS: tuple[tuple[str, str, Callable[[Pair, Pair], float], str, float], ...] = (
    ("{} rps@32 / granian rps@32", "granian", _rps, ">=", 0.33),
    ("{} rps@32 / chalice rps@32", "chalice", _rps, ">=", 5.0),
    ("{} p50@1 - granian p50@1, ms", "granian", _p50_gap, "<=", 0.3),
)
PLAIN = ("fogbank-http", "fogbank-rest", "fogbank-warm")

Comparison = tuple[str, str, str, Callable[[Pair, Pair], float], str, float]
"""(label, row, the row it is compared with, how, sense, goal)."""


def comparisons() -> Iterator[Comparison]:
    for name in PLAIN:
        for label, peer, how, sense, goal in TARGETS:
            yield label.format(name), name, peer, how, sense, goal
    # API management: each row against its plain route.
    for name, plain, goal in _fogbank_rows.OVERHEAD:
        yield f"{name} rps@32 / {plain} rps@32", name, plain, _rps, ">=", goal


def ratios(rows: list[Row]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    measured = {row.name for row in rows}
    for label, name, peer_name, how, sense, goal in comparisons():
        if name in measured:
            fog, peer = _best(rows, name), _best(rows, peer_name)
            entry: dict[str, object] = {"ratio": label, "target": f"{sense} {goal}"}
            if not fog or not peer:
                absent = name if not fog else peer_name
                why = "unavailable" if absent in measured else "not measured"
                entry["missing"], entry["value"] = f"{absent} {why}", None
            else:
                value = how(fog, peer)
                entry["value"] = round(value, 3)
                entry["met"] = value >= goal if sense == ">=" else value <= goal
            out.append(entry)
    return out


def _errors(result: Wrk) -> str:
    counts = {"timeout": result.timeouts, "read": result.read_errors, "non-2xx": result.non_2xx}
    counts["other"] = result.errors
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "0"


def print_report(rows: list[Row], found: list[dict[str, object]]) -> None:
    head = f"{'name':<20}{'mode':<13}{'rps@32':>9}{'p50@32':>9}{'p99@32':>9}"
    head += f"{'rps@1':>8}{'p50@1':>8}{'p99@1':>8}  errors @32; @1"
    print("\n" + head + "\n" + "-" * len(head))
    for row in rows:
        if row.unavailable or not row.many or not row.one:
            print(f"{row.name:<20}unavailable: {row.unavailable}")
            continue
        mode = row.mode + (" *" if row.best and sum(r.name == row.name for r in rows) > 1 else "")
        m, o = row.many, row.one
        line = f"{row.name:<20}{mode:<13}{m.ok_rps:>9,.0f}{m.p50_ms:>8.2f}ms{m.p99_ms:>7.1f}ms"
        line += f"{o.ok_rps:>8,.0f}{o.p50_ms:>6.2f}ms{o.p99_ms:>6.2f}ms"
        print(f"{line}  {_errors(m)}; {_errors(o)}")
    print("* the peer's best mode (highest rps@32); the ratios use it.  p = latency percentile.")
    if any(r.many and r.one and r.many.non_2xx + r.one.non_2xx for r in rows):
        print("rps counts 2xx/3xx answers only; the percentiles are over every answer")
    if any(r.mode == "close" and r.many and r.many.read_errors for r in rows):
        print("read errors in close mode: the server closed without saying so (see README)")
    for row in rows:
        if row.note:
            print(f"{row.name}: {row.note}")
    measured = [r for r in rows if r.cpu_us is not None and r.children_cpu_us is not None]
    if measured:
        print("\nCPU a request at 32 connections (/proc): the server's process, and all under it")
        for row in measured:
            print(
                f"  {row.name:<20}{row.mode:<13}{row.cpu_us or 0.0:>8.1f} us"
                f"{row.children_cpu_us or 0.0:>10.1f} us"
            )
    print()
    for entry in found:
        value = entry["value"]
        if value is None:
            shown, verdict = "n/a", f"({entry['missing']})"
        else:
            shown, verdict = f"{value:.3f}", "met" if entry["met"] else "MISSED"
        print(f"{entry['ratio']:<50}{shown:>7}   target {entry['target']:<8} {verdict}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Turns SIGTERM/SIGHUP into the same unwinding as Ctrl-C, so every server is stopped.
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=7, help="seconds per wrk run (7)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per row (2)")
    parser.add_argument("--only", default=",".join(NAMES), help="NAME[,NAME]: " + ", ".join(NAMES))
    parser.add_argument("--skip-install", action="store_true", help="never install a peer")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    # A prefix picks a family: `--only fogbank` means every fogbank row.
    asked = [part.strip() for part in args.only.split(",") if part.strip()]
    args.only = [n for n in NAMES if any(n == a or n.startswith(a + "-") for a in asked)]
    unknown = [a for a in asked if not any(n == a or n.startswith(a + "-") for n in NAMES)]
    if unknown or not args.only:
        parser.error(f"--only: unknown {', '.join(unknown) or 'names'}; choose from {NAMES}")
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup are whole seconds, at least 1")
    return args


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`.")
        return 2
    if not on_cores(0):
        print("warning: taskset or a second core is missing; server and wrk share the CPU")
    else:
        os.sched_setaffinity(0, {LOAD_CORE})
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['kernel']}, {info['python']}")
    print(f"command: {command_line()}")
    print(
        f"server on core {SERVER_CORE}, {info['wrk']} on core {LOAD_CORE}, {args.duration} s a run"
    )
    work = Path(tempfile.mkdtemp(prefix="fogbank-gateway-"))
    try:
        rows = run_all(args, work)
    except KeyboardInterrupt:
        print("\ninterrupted: every server started was stopped")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = ratios(rows)
    print_report(rows, found)
    elapsed = time.monotonic() - started
    print(f"\nversions: {', '.join(f'{k} {v}' for k, v in versions().items())}; {elapsed:.0f} s")
    if args.json:
        document = {
            "machine": info,
            "command": command_line(),
            "duration_s": args.duration,
            "connections": [CONNECTIONS, 1],
            "versions": versions(),
            "rows": [asdict(row) for row in rows],
            "ratios": found,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
