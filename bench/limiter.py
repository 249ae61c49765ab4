"""Limiter load run: does a throttled route admit `rate x time + burst` requests under load?

A route of a REST API is throttled by its stage's method settings (rate R, burst B). A paced
load generator offers it a steady 2,000 requests a second for N seconds, far above R, so the
bucket stays empty after its first burst and the route must admit B + R x T requests, T being
the time from the first request sent to the last. Rows:

- memory: one `fogbank up` (the embedded store);
- redis, 1 node: one `fogbank up --redis-url`;
- redis, 2 nodes: two `fogbank up --redis-url` on the same Redis, each offered half the load;
  together they must still admit B + R x T, not twice that.

The generator is asyncio over raw keep-alive HTTP/1.1 connections (wrk2 is not packaged by
Debian; wrk cannot hold a rate): request i is due at start + i / rate and goes out on the next
free connection. This is an acceptance run, not a test: it prints the table, and the error
column should stay within 1%. Run: .venv/bin/python bench/limiter.py [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A sibling module of a script, not a package: found through the path set just above.
from _peers import HOST, LAMBDA_HANDLER, PeerError, Running, Server, Target, free_port

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Limited:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      MethodSettings:
        - {{ResourcePath: /limited, HttpMethod: GET,
            ThrottlingRateLimit: {rate}, ThrottlingBurstLimit: {burst}}}
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: src
      Events:
        Limited: {{Type: Api, Properties: {{RestApiId: !Ref Limited, Path: /limited, Method: get}}}}
        Probe: {{Type: Api, Properties: {{RestApiId: !Ref Limited, Path: /probe, Method: get}}}}
"""
PREFIX = "fogbank:"
"""What `fogbank up` prefixes its Redis keys with; the run deletes these keys first."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the generator saw: statuses, and when the first and the last request went out."""

    statuses: Counter[int]
    per_node: Counter[int]
    """Requests sent to each node, by port."""
    first_sent: float
    last_sent: float
    late_ms: float
    """How late the latest request left against its schedule (a busy generator shows here)."""

    @property
    def seconds(self) -> float:
        return self.last_sent - self.first_sent

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while (size := int((await reader.readuntil(b"\r\n")).strip(), 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    return status


async def offer(
    urls: list[tuple[int, str]], rate: float, seconds: float, connections: int
) -> Outcome:
    """`rate` requests a second for `seconds`, spread over `connections` per (port, path)."""
    total = int(rate * seconds)
    due: asyncio.Queue[int] = asyncio.Queue()
    statuses: Counter[int] = Counter()
    per_node: Counter[int] = Counter()
    sent: list[float] = []
    late = 0.0
    start = time.monotonic() + 0.2

    async def worker(port: int, path: str) -> None:
        nonlocal late
        reader, writer = await asyncio.open_connection(HOST, port)
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        try:
            while (index := await due.get()) >= 0:
                now = time.monotonic()
                late = max(late, now - (start + index / rate))
                sent.append(now)
                per_node[port] += 1
                writer.write(request)
                statuses[await _read_response(reader)] += 1
        finally:
            writer.close()

    workers = [
        asyncio.create_task(worker(port, path)) for _ in range(connections) for port, path in urls
    ]
    for index in range(total):
        wait = start + index / rate - time.monotonic()
        if wait > 0.0005:  # release requests in small batches, not one timer each
            await asyncio.sleep(wait)
        due.put_nowait(index)
    for _ in workers:
        due.put_nowait(-1)
    await asyncio.gather(*workers)
    return Outcome(statuses, per_node, min(sent), max(sent), late * 1000)


def on_core(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core % (os.cpu_count() or 1))]
    return []


def node(work: Path, name: str, template: Path, core: int, redis_url: str | None) -> Server:
    port, control = free_port(), free_port()
    exe = Path(sys.executable).with_name("fogbank")
    argv = [*on_core(core), str(exe), "up", "-t", str(template), "--port", str(port)]
    argv += ["--control-port", str(control), "--state-dir", str(work / name), "--no-reload"]
    if redis_url is not None:
        argv += ["--redis-url", redis_url]
    return Server(name, argv, work, (), control, start_timeout=60.0)


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    outcome: Outcome
    rate: float
    burst: int

    @property
    def admitted(self) -> int:
        return self.outcome.statuses[200]

    @property
    def expected(self) -> float:
        return self.rate * self.outcome.seconds + self.burst

    @property
    def error(self) -> float:
        return (self.admitted - self.expected) / self.expected


def run_row(
    label: str, nodes: int, redis_url: str | None, args: argparse.Namespace, work: Path
) -> Row:
    template = work / "template.yaml"
    if redis_url is not None:
        client = redis.Redis.from_url(redis_url)
        stale = list(client.scan_iter(match=f"{PREFIX}*"))
        if stale:
            client.delete(*stale)
        client.close()
    servers = [
        node(work, f"{label.replace(' ', '-')}-{n}", template, n, redis_url) for n in range(nodes)
    ]
    running = [Running(server, work / f"{server.label}.log") for server in servers]
    try:
        ports = []
        for proc, server in zip(running, servers, strict=True):
            proc.wait_started()
            port = int(server.argv[server.argv.index("--port") + 1])
            # An unthrottled route of the same API: probing must not spend the bucket's tokens.
            proc.probe(Target("probe", f"http://{HOST}:{port}/prod/probe"), grace=30.0)
            ports.append(port)
        per_node = max(1, args.connections // nodes)
        urls = [(port, "/prod/limited") for port in ports]
        outcome = asyncio.run(offer(urls, args.offered, args.duration, per_node))
    finally:
        for proc in running:
            proc.stop()
    return Row(label, outcome, args.rate, args.burst)


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\nroute: rate {args.rate:g}/s, burst {args.burst}; offered {args.offered:g} requests/s"
        f" for {args.duration:g} s over {args.connections} connections\n"
    )
    columns = ["store", "sent (per node)", "offered rps", "T (s)", "admitted (200)", "R x T + B"]
    columns += ["error", "429", "other", "late (ms)"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        out = row.outcome
        other = out.sent - out.statuses[200] - out.statuses[429]
        print(
            f"| {row.label} | {' + '.join(map(str, out.per_node.values()))} |"
            f" {out.sent / out.seconds:,.0f} | {out.seconds:.3f} |"
            f" {row.admitted} | {row.expected:,.1f} | {row.error:+.2%} | {out.statuses[429]} |"
            f" {other} | {out.late_ms:.1f} |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=300.0, help="route rate limit R (per s)")
    parser.add_argument("--burst", type=int, default=500, help="route burst limit B")
    parser.add_argument("--offered", type=float, default=2000.0, help="requests a second offered")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per row")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--only", default="memory,redis-1,redis-2", help="rows to run")
    return parser.parse_args(argv)


ROWS = {
    "memory": ("memory, 1 node", 1, False),
    "redis-1": ("redis, 1 node", 1, True),
    "redis-2": ("redis, 2 nodes", 2, True),
}


def main() -> int:
    args = parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fogbank-limiter-") as scratch:
        work = Path(scratch)
        (work / "src").mkdir()
        (work / "src" / "app.py").write_text(LAMBDA_HANDLER)
        (work / "template.yaml").write_text(TEMPLATE.format(rate=args.rate, burst=args.burst))
        for key in args.only.split(","):
            label, nodes, clustered = ROWS[key]
            print(f"running {label} ...", flush=True)
            try:
                rows.append(
                    run_row(label, nodes, args.redis_url if clustered else None, args, work)
                )
            except PeerError as exc:
                print(f"  {label}: {exc}")
    print_table(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
