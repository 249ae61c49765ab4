"""Cold and warm invoke latency through the Lambda Invoke API, against `python -c pass`.

Starts a real `fogbank up` (pinned to core 0 when possible) on a generated SAM template of N
identical hello-world functions, then, from this process (core 1):

- cold: the first invocation of each function (no environment exists yet; its zygote is warm),
- warm: repeated invocations of one function over one keep-alive connection (concurrency 1),
- baseline: `python -c pass` run as a fresh process.

Run: .venv/bin/python bench/cold_start.py [--functions 200] [--warm 5000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HANDLER = "def handler(event, context):\n    return {'hello': 'world'}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_app(root: Path, count: int) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(HANDLER)
    lines = [
        'AWSTemplateFormatVersion: "2010-09-09"',
        "Transform: AWS::Serverless-2016-10-31",
        "Resources:",
    ]
    for i in range(count):
        lines += [
            f"  Fn{i}:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            f"      FunctionName: fn{i}",
            "      Runtime: python3.12",
            "      Handler: app.handler",
            "      CodeUri: src",
        ]
    template = root / "template.yaml"
    template.write_text("\n".join(lines) + "\n")
    return template


def taskset(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"fogbank up exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("fogbank up did not start")


def invoke(conn: http.client.HTTPConnection, name: str) -> float:
    started = time.perf_counter()
    conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=b"{}")
    resp = conn.getresponse()
    body = resp.read()
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status != 200 or resp.getheader("X-Amz-Function-Error"):
        raise SystemExit(f"invoke {name} failed: {resp.status} {body!r}")
    return elapsed


def python_pass(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*taskset(0), sys.executable, "-c", "pass"], check=True)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--warm", type=int, default=5000)
    parser.add_argument("--baseline-runs", type=int, default=50)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fogbank-bench-", dir="/var/tmp"))
    template = write_app(root, args.functions)
    port = free_port()
    fogbank = str(Path(sys.executable).with_name("fogbank"))
    cmd = [*taskset(0), fogbank, "up", "-t", str(template), "--control-port", str(port)]
    cmd += ["--port", str(free_port()), "--state-dir", str(root / "state")]
    cmd += ["--max-environments", str(args.functions + 10)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if taskset(1):
        os.sched_setaffinity(0, {1})
    try:
        wait_ready(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        cold = [invoke(conn, f"fn{i}") for i in range(args.functions)]
        for _ in range(200):
            invoke(conn, "fn0")
        warm = [invoke(conn, "fn0") for _ in range(args.warm)]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    base = python_pass(args.baseline_runs)

    rows = [
        ("cold invoke (fork + init + invoke, via Invoke API)", cold),
        ("warm invoke, concurrency 1 (via Invoke API)", warm),
        ("baseline: python -c pass", base),
    ]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}")
    print(f"{'measurement':<52} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for name, samples in rows:
        print(
            f"{name:<52} {len(samples):>6} {pct(samples, 0.5):>9.3f} {pct(samples, 0.99):>9.3f}"
            f" {statistics.fmean(samples):>9.3f}"
        )
    base_p50 = pct(base, 0.5)
    print(f"cold p50 / python -c pass p50 = {pct(cold, 0.5) / base_p50:.3f}")
    print(
        json.dumps({"cold_p50": pct(cold, 0.5), "warm_p50": pct(warm, 0.5), "base_p50": base_p50})
    )


if __name__ == "__main__":
    main()
