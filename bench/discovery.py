"""Service discovery: DiscoverInstances latency, a dead instance's exit from DNS and discovery, and
the gateway's throughput to a discovered service.

One `fogbank up` (pinned to core 0 with its children; this script and wrk on core 1) serves a
generated template: a DNS namespace `bench.local` with a discovery service `items`, and (for the
last two parts) a supervised service `echo` (uvicorn, a raw ASGI hello world) registered as
`echo.bench.local` behind an HTTP API private integration.

- discover: `DiscoverInstances` (HealthStatus HEALTHY, 100 results) with 1,000 instances
  registered, through boto3 and as raw HTTP on one keep-alive connection against the control port;
  an A query to the DNS server; `Registry.discover` in this process (target: boto3 p50 <= 1 ms).
- death: `kill -9` of an echo instance; the time until it leaves the SRV answer and HEALTHY
  discovery (target: <= the health check's interval + timeout), and until the supervisor has the
  desired count healthy again.
- gateway: wrk requests/s through the gateway to echo against one echo instance hit directly
  (target: >= 0.5x).
- cpu: CPU a request (/proc, over one more 32-connection wrk run of each) of the node's front
  and of the echo instances, hit directly and through the gateway: sharing core 0 with the
  service, the gateway reaches 0.5x of direct only if it spends no more CPU a request than the
  service does.

Run: .venv/bin/python bench/discovery.py [--only discover,death,gateway] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Sibling modules of a script, found through the path set just above.
import _peers
from _discovery_node import (
    BOTO3_ROW,
    CANNED_APP,
    ECHO,
    ECHO_COUNT,
    INTERVAL_S,
    ITEMS,
    NAMESPACE,
    PARTS,
    TIMEOUT_S,
    WORK_US,
    Node,
    cloud_map_client,
)
from _peers import HOST, PeerError, Running, Server, Target, free_port

import gateway
from fogbank.discovery import HealthFilter, Registry
from fogbank.discovery._records import IPV4, PORT
from fogbank.model import (
    DiscoveryServiceSpec,
    DnsRecord,
    Identity,
    NamespaceSpec,
    NamespaceType,
    discovery_id,
)


@dataclass(frozen=True, slots=True)
class Latency:
    name: str
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


@dataclass(frozen=True, slots=True)
class Death:
    """One instance stopped: seconds until it left each view, and until the count recovered."""

    how: str
    """`kill -9` or `SIGSTOP`."""
    dns_s: float
    discovery_s: float
    recovered_s: float


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(name: str, call: Callable[[], object], runs: int, warmup: int = 200) -> Latency:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return Latency(name, runs, pct(samples, 0.5), pct(samples, 0.99), statistics.fmean(samples))


def discover_part(node: Node, args: argparse.Namespace) -> list[Latency]:
    rows = [in_process(args)]
    try:
        rows += through_node(node, args)
    except (PeerError, BotoCoreError, ClientError) as exc:
        print(f"discover: the node's rows are unavailable: {exc}")
    return rows


def through_node(node: Node, args: argparse.Namespace) -> list[Latency]:
    service_id = discovery_id("srv", "ItemsDiscovery")
    for n in range(args.instances):
        node.cloudmap.register_instance(
            ServiceId=service_id, InstanceId=f"item-{n:04d}", Attributes=item_attributes(n)
        )
    request = {"NamespaceName": NAMESPACE, "ServiceName": ITEMS, "HealthStatus": "HEALTHY"}
    body = json.dumps(request).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Route53AutoNaming_v20170314.DiscoverInstances",
    }
    conn = http.client.HTTPConnection(HOST, node.control)
    answered: list[bytes] = []

    def raw() -> None:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or len(json.loads(data)["Instances"]) != 100:
            raise PeerError(f"DiscoverInstances answered {resp.status} {data[:200]!r}")
        answered[:] = [data]

    a_query = dns.message.make_query(f"{ITEMS}.{NAMESPACE}", "A")

    def dns_a() -> None:
        reply = dns.query.udp(a_query, HOST, timeout=2, port=node.dns_port)
        if sum(len(rrset) for rrset in reply.answer) != 8:
            raise PeerError(f"the A query answered {reply}")

    rows = [
        latency(
            BOTO3_ROW,
            lambda: node.cloudmap.discover_instances(**request),  # type: ignore[arg-type]
            args.runs,
        ),
        latency("DiscoverInstances, raw HTTP keep-alive", raw, args.runs),
        latency("DNS A query (8 answers), dnspython UDP", dns_a, args.runs),
    ]
    conn.close()
    return [*rows, boto3_floor(node.work, answered[0], request, args)]


def boto3_floor(
    work: Path, answer: bytes, request: dict[str, str], args: argparse.Namespace
) -> Latency:
    """boto3's DiscoverInstances against a server that does no work: uvicorn (raw ASGI, core 0)
    replaying one of fogbank's answers. No server can answer boto3 faster than this."""
    (work / "canned.json").write_bytes(answer)
    (work / "canned_asgi.py").write_text(CANNED_APP)
    port = free_port()
    argv = [
        *gateway.on_cores(0),
        sys.executable,
        "-m",
        "uvicorn",
        "canned_asgi:app",
        "--host",
        HOST,
    ]
    argv += ["--port", str(port), "--http", "httptools", "--loop", "uvloop", "--lifespan", "off"]
    argv += ["--no-access-log", "--log-level", "warning"]
    with Running(Server("canned", argv, work, (), port), work / "canned.log") as running:
        running.wait_started()
        client = cloud_map_client(port)
        return latency(
            "boto3 floor: the same answer replayed by raw ASGI",
            lambda: client.discover_instances(**request),  # type: ignore[arg-type]
            args.runs,
        )


def item_attributes(n: int) -> dict[str, str]:
    return {IPV4: f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", PORT: "8080"}


def in_process(args: argparse.Namespace) -> Latency:
    """`Registry.discover` itself: what the API adds to it is parsing, JSON and HTTP."""
    registry = Registry(Identity())
    spec = DiscoveryServiceSpec(
        "ItemsDiscovery", ITEMS, "BenchNamespace", dns_records=(DnsRecord("A", 10),)
    )
    namespace = NamespaceSpec("BenchNamespace", NAMESPACE, NamespaceType.DNS_PRIVATE)
    registry.apply_template([namespace], [spec])
    for n in range(args.instances):
        registry.register_instance(spec.service_id, f"item-{n:04d}", item_attributes(n))

    def discover() -> None:
        registry.discover(NAMESPACE, ITEMS, health=HealthFilter.HEALTHY, max_results=100)

    return latency("Registry.discover, in process", discover, args.runs * 5)


def death_part(node: Node, args: argparse.Namespace) -> list[Death]:
    """`kill -9` (the supervisor sees the exit) then SIGSTOP (a hung instance: only its health
    checks can tell) of one echo instance at a time, each time once the count is back."""
    deaths = []
    for how in [signal.SIGKILL] * args.kills + [signal.SIGSTOP] * args.hangs:
        deaths.append(one_death(node, how))
        d = deaths[-1]
        print(f"  {d.how}: out of DNS {d.dns_s:.3f} s, out of discovery {d.discovery_s:.3f} s")
    return deaths


def one_death(node: Node, how: signal.Signals) -> Death:
    node.wait_for(f"{ECHO_COUNT} healthy echo instances", lambda: len(node.healthy(ECHO)) >= 3)
    victim = node.healthy(ECHO)[0]
    attrs = victim["Attributes"]
    port = int(attrs[PORT])
    status, pid = _peers.request(f"http://{attrs[IPV4]}:{port}/pid")
    if status != 200:
        raise PeerError(f"GET /pid of {victim['InstanceId']} answered {status}")
    target = (f"{victim['InstanceId']}.{ECHO}.{NAMESPACE}.".lower(), port)
    if target not in node.srv_targets(ECHO):
        raise PeerError(f"{target} is not in the SRV answer before the kill")

    def in_discovery() -> bool:
        ids = {(i["InstanceId"], i["Attributes"].get(PORT)) for i in node.healthy(ECHO)}
        return (victim["InstanceId"], str(port)) in ids

    def until_gone(present: Callable[[], bool]) -> float:
        while present():
            if time.monotonic() - started > 60:
                raise PeerError(f"{victim['InstanceId']} still discoverable 60 s after {how.name}")
            time.sleep(0.001)
        return time.monotonic() - started

    started = time.monotonic()
    os.kill(int(pid), how)
    # One poller each, so that neither waits for the other's call: DNS answers in ~1-2 ms,
    # boto3's DiscoverInstances in ~2-5 ms; each figure is late by at most one of its calls.
    with ThreadPoolExecutor(2) as pollers:
        dns = pollers.submit(until_gone, lambda: target in node.srv_targets(ECHO))
        discovery = pollers.submit(until_gone, in_discovery)
        dns_s, discovery_s = dns.result(), discovery.result()
    node.wait_for("the replacement", lambda: len(node.healthy(ECHO)) >= ECHO_COUNT)
    recovered = time.monotonic() - started
    if how is signal.SIGSTOP:
        # The supervisor's SIGTERM waits in a stopped process; spare it the stop timeout.
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    name = "kill -9" if how is signal.SIGKILL else "SIGSTOP"
    return Death(name, dns_s, discovery_s, recovered)


def gateway_part(node: Node, args: argparse.Namespace) -> list[gateway.Row]:
    node.wait_for(f"{ECHO_COUNT} healthy echo instances", lambda: len(node.healthy(ECHO)) >= 3)
    attrs = node.healthy(ECHO)[0]["Attributes"]
    rows = []
    direct, via = f"http://{attrs[IPV4]}:{attrs[PORT]}/echo", f"http://{HOST}:{node.port}/echo"
    work = f"?work={WORK_US}"
    targets = (
        Target("echo, direct", direct),
        Target("echo, gateway", via),
        Target("echo 1 ms, direct", direct + work),
        Target("echo 1 ms, gateway", via + work),
    )
    for target in targets:
        node.running.probe(target, grace=30)
        rows += gateway.measure(target, args)
    return rows


@dataclass(frozen=True, slots=True)
class CpuShare:
    """CPU a request over one wrk run at 32 connections, read from /proc."""

    target: str
    requests: int
    front_us: float
    """The node's own process: the gateway."""
    service_us: float
    """The echo instances, together."""


def cpu_part(node: Node, args: argparse.Namespace) -> list[CpuShare]:
    node.wait_for(f"{ECHO_COUNT} healthy echo instances", lambda: len(node.healthy(ECHO)) >= 3)
    attrs = node.healthy(ECHO)[0]["Attributes"]
    front = node.running.proc.pid
    # The node runs no function here: everything under it is an echo instance.
    echoes = [pid for pid in _peers.process_tree(front) if pid != front]
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    shares = []
    for name, url in (
        ("echo, direct", f"http://{attrs[IPV4]}:{attrs[PORT]}/echo"),
        ("echo, gateway", f"http://{HOST}:{node.port}/echo"),
    ):
        target = Target(name, url)
        node.running.probe(target, grace=30)
        gateway.run_wrk(target, gateway.CONNECTIONS, args.warmup, False)
        before = {pid: _peers.cpu_ticks(pid) for pid in (front, *echoes)}
        run = gateway.run_wrk(target, gateway.CONNECTIONS, args.duration, False)
        spent = {pid: _peers.cpu_ticks(pid) - ticks for pid, ticks in before.items()}
        service = sum(ticks for pid, ticks in spent.items() if pid != front)
        shares.append(
            CpuShare(
                name,
                run.requests,
                spent[front] * tick_us / run.requests,
                service * tick_us / run.requests,
            )
        )
    return shares


def print_report(found: dict[str, Any]) -> None:
    if rows := found.get("discover"):
        head = f"{'measurement':<52}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}"
        print("\n" + head + "\n" + "-" * len(head))
        for r in rows:
            print(f"{r.name:<52}{r.n:>7}{r.p50_ms:>9.3f}{r.p99_ms:>9.3f}{r.mean_ms:>9.3f}")
        for r in rows:
            if r.name == BOTO3_ROW:
                verdict = "met" if r.p50_ms <= 1.0 else "MISSED"
                print(f"boto3 DiscoverInstances p50 {r.p50_ms:.3f} ms, target <= 1 ms: {verdict}")
    if deaths := found.get("death"):
        budget = INTERVAL_S + TIMEOUT_S
        print(f"\nan echo instance stopped; budget: check interval + timeout = {budget:.1f} s")
        for how in ("kill -9", "SIGSTOP"):
            some = [d for d in deaths if d.how == how]
            if not some:
                continue
            print(f"  {how} ({len(some)} times)")
            for label, key in (
                ("out of DNS SRV", "dns_s"),
                ("out of HEALTHY discovery", "discovery_s"),
            ):
                values = [getattr(d, key) for d in some]
                verdict = "met" if max(values) <= budget else "MISSED"
                middle, top = statistics.median(values), max(values)
                print(f"    {label:<26} median {middle:.3f} s, max {top:.3f} s: {verdict}")
            recovered = statistics.median(d.recovered_s for d in some)
            print(f"    back to {ECHO_COUNT} healthy instances: median {recovered:.3f} s")
    if shares := found.get("cpu"):
        print(
            "\nCPU a request at 32 connections (/proc; the node and the echo instances on core 0)"
        )
        for share in shares:
            print(
                f"  {share.target:<16} {share.requests:>8,} requests: gateway"
                f" {share.front_us:6.1f} us, echo instances {share.service_us:6.1f} us"
            )
    if rows := found.get("gateway"):
        gateway.print_report(rows, [])
        for direct_row, via_row in zip(rows[::2], rows[1::2], strict=True):
            if direct_row.many and via_row.many:
                ratio = via_row.many.ok_rps / direct_row.many.ok_rps
                verdict = "met" if ratio >= 0.5 else "MISSED"
                label = f"{via_row.name} rps / direct rps"
                print(f"{label:<36} = {ratio:.3f}, target >= 0.5: {verdict}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help="PART[,PART]: " + ", ".join(PARTS))
    parser.add_argument("--instances", type=int, default=1000, help="registered for discover")
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per latency row")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 of an instance (5)")
    parser.add_argument("--hangs", type=int, default=3, help="SIGSTOP of an instance (3)")
    parser.add_argument("--duration", type=int, default=7, help="seconds per wrk run (7)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up (2)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    args.only = [part for part in args.only.split(",") if part]
    if unknown := set(args.only) - set(PARTS):
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    return args


def main() -> None:
    args = parse_args()
    if gateway.on_cores(1):
        os.sched_setaffinity(0, {gateway.LOAD_CORE})
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fogbank-bench-", dir="/var/tmp") as scratch:
        node = Node(Path(scratch), args.only)
        with node.running:
            node.running.wait_started()
            parts: dict[str, Callable[[Node, argparse.Namespace], list[Any]]] = {
                "discover": discover_part,
                "death": death_part,
                "gateway": gateway_part,
                "cpu": cpu_part,
            }
            for part in args.only:
                print(f"{part}: measuring", flush=True)
                try:
                    found[part] = parts[part](node, args)
                except (PeerError, BotoCoreError, ClientError) as exc:
                    print(f"{part}: unavailable: {exc}")
    print(f"\nmachine: {gateway.machine()}")
    print_report(found)
    if args.json:
        document = {
            "machine": gateway.machine(),
            "command": gateway.command_line(),
            **{part: [asdict(row) for row in rows] for part, rows in found.items()},
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
