"""What it costs this machine to split a request's work between two processes on one core.

fogbank's front and a Lambda environment are two processes; every invocation switches from one
to the other and back. On bare metal a switch costs a few microseconds; on some virtual machines
(nested virtualisation, shadow page tables) the cost grows with the memory each process touches
afterwards and with the number of processes taking turns. This script measures it with no
fogbank code at all, so that a machine can be judged before fogbank's figures are:

- baseline: a loop doing a fixed piece of work twice per request (touching `--objects` Python
  objects at random each time, like an interpreter's working set), in one process;
- split: the same two pieces, one in an asyncio (uvloop) parent and one in a child process that
  answers over a Unix socket, with 1, 4 and 32 children taking turns (as 32 connections keep 32
  environments busy).

It prints microseconds per request and the tax (split minus baseline). Everything runs on core
0. Run: .venv/bin/python bench/switch_tax.py [--objects N[,N...]] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import sys
import time
from typing import cast

import uvloop

CHILDREN = (1, 4, 32)


class _Work:
    """Touches `touches` of `objects` small dicts at random, like a request's working set."""

    def __init__(self, objects: int, touches: int = 300) -> None:
        self.heap = [{"a": i, "b": str(i)} for i in range(objects)]
        self.picks = [random.randrange(objects) for _ in range(touches)]

    def __call__(self) -> int:
        heap, total = self.heap, 0
        for i in self.picks:
            total += cast(int, heap[i]["a"])
        return total


def _child(sock: socket.socket, work: _Work) -> None:
    while True:
        data = sock.recv(65536)
        if not data:
            os._exit(0)
        work()
        sock.sendall(data)


class _Peer(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reply: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(data)


async def _split(socks: list[socket.socket], work: _Work, requests: int) -> float:
    loop = asyncio.get_running_loop()
    peers: list[_Peer] = []
    for sock in socks:
        _, peer = await loop.create_unix_connection(_Peer, sock=sock)
        peers.append(peer)

    async def client(peer: _Peer, count: int) -> None:
        assert peer.transport is not None
        for _ in range(count):
            peer.reply = loop.create_future()
            peer.transport.write(b"x")
            work()
            await peer.reply

    share = requests // len(peers)
    started = time.perf_counter()
    await asyncio.gather(*(client(peer, share) for peer in peers))
    return (time.perf_counter() - started) / (share * len(peers)) * 1e6


def measure(children: int, objects: int, requests: int) -> tuple[float, float]:
    """(baseline µs, split µs) per request."""
    work = _Work(objects)
    started = time.perf_counter()
    for _ in range(requests):
        work()
        work()
    baseline = (time.perf_counter() - started) / requests * 1e6
    socks, pids = [], []
    for _ in range(children):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            ours.close()
            _child(theirs, work)
        theirs.close()
        socks.append(ours)
        pids.append(pid)
    try:
        split = uvloop.run(_split(socks, work, requests))
    finally:
        for sock in socks:
            sock.close()
        for pid in pids:
            os.waitpid(pid, 0)
    return baseline, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", default="1000,100000", help="working-set sizes (1000,100000)")
    parser.add_argument("--requests", type=int, default=6400, help="requests per row (6400)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,")
    print(f"  Linux {platform.release()}, CPython {platform.python_version()}; core 0 only")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print()
    print(
        f"{'objects':>8} {'children':>8} {'one process':>12} {'split':>10} {'tax':>10} {'ratio':>7}"
    )
    for objects in (int(n) for n in args.objects.split(",")):
        for children in CHILDREN:
            baseline, split = measure(children, objects, args.requests)
            print(
                f"{objects:>8,} {children:>8} {baseline:>9.1f} µs {split:>7.1f} µs"
                f" {split - baseline:>7.1f} µs {split / baseline:>6.2f}x"
            )


if __name__ == "__main__":
    main()
