"""An instance's process: environment, argv, output, stop and reasons it cannot start (real
processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fogbank.model import ServiceSpec
from fogbank.services import InstanceState
from fogbank.services._instance import (
    InstanceProcess,
    LaunchError,
    command_for,
    describe_exit,
    environment_for,
    new_instance_id,
)
from fogbank.services._ports import PidFiles, PortAllocator, port_in_use_line

from ..conftest import eventually
from .conftest import gone

pytestmark = pytest.mark.anyio


def test_port_references_are_replaced_in_every_argument() -> None:
    argv = ("serve", "--port=${PORT}", "$PORT", "$PORTS", "${PORT}x", "$$PORT")
    assert command_for(argv, 8123) == ["serve", "--port=8123", "8123", "$PORTS", "8123x", "$8123"]


def test_exit_descriptions() -> None:
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"


def test_instance_ids_look_like_ecs_task_ids() -> None:
    first, second = new_instance_id(), new_instance_id()
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


def test_the_environment_is_minimal_then_the_services_then_fogbanks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_OF_THE_NODE", "x")
    monkeypatch.setenv("LANG", "C.UTF-8")
    spec = ServiceSpec(
        name="orders",
        command=("run",),
        working_dir=tmp_path,
        environment={"PORT": "1", "DB": "orders.db", "PYTHONUNBUFFERED": "0"},
    )
    env = environment_for(spec, instance_id="abc", port=8000, zone="eu-1a")
    assert "SECRET_OF_THE_NODE" not in env
    assert env["LANG"] == "C.UTF-8"
    assert env["DB"] == "orders.db"
    assert env["PYTHONUNBUFFERED"] == "0"  # the service's own choice wins
    assert env["PORT"] == "8000"  # fogbank's wins
    assert env["FOGBANK_INSTANCE_ID"] == "abc"
    assert env["FOGBANK_SERVICE"] == "orders"
    assert env["AVAILABILITY_ZONE"] == "eu-1a"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def make(
    tmp_path: Path, *argv: str, lines: list[bytes] | None = None, **env: str
) -> InstanceProcess:
    spec = ServiceSpec(name="svc", command=tuple(argv), working_dir=tmp_path)
    sink = lines if lines is not None else []
    return InstanceProcess(
        spec,
        instance_id="i-1",
        port=4321,
        env=environment_for(spec, instance_id="i-1", port=4321, zone="z") | env,
        on_line=sink.append,
    )


async def test_output_arrives_line_by_line_from_both_streams(tmp_path: Path) -> None:
    lines: list[bytes] = []
    script = (
        "import sys; print('out $PORT'); print('err', file=sys.stderr); sys.stdout.write('partial')"
    )
    process = make(tmp_path, sys.executable, "-c", script.replace("$PORT", "${PORT}"), lines=lines)
    await process.spawn()
    states = [process.state]
    assert await process.wait() == 0
    await process.finish()
    states.append(process.state)
    assert states == [InstanceState.RUNNING, InstanceState.STOPPED]
    assert lines == [b"out 4321", b"err", b"partial"]
    assert list(process.tail) == lines


@pytest.mark.parametrize(
    ("argv", "directory", "message"),
    [
        (("/no/such/command",), None, "command not found: /no/such/command"),
        (("run",), "missing", "working directory {root}/missing does not exist"),
        (("./script",), None, "permission denied: ./script"),
        ((), None, "the service has no command"),
    ],
)
async def test_what_cannot_start_is_a_launch_error(
    tmp_path: Path, argv: tuple[str, ...], directory: str | None, message: str
) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\n")  # not executable
    process = make(tmp_path, *argv)
    if directory:
        process.spec = ServiceSpec(name="svc", command=argv, working_dir=tmp_path / directory)
    with pytest.raises(LaunchError) as caught:
        await process.spawn()
    assert str(caught.value) == message.format(root=tmp_path)
    assert process.pid is None


async def test_terminate_escalates_to_sigkill_and_leaves_no_child(tmp_path: Path) -> None:
    lines: list[bytes] = []
    script = (
        "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "child = subprocess.Popen(['sleep', '60']); print(child.pid, flush=True); time.sleep(60)"
    )
    process = make(tmp_path, sys.executable, "-c", script, lines=lines)
    await process.spawn()
    await eventually(lambda: lines, "the child's pid")
    child = int(lines[0])
    assert process.pid is not None
    leader = process.pid
    await process.terminate(0.2)
    assert process.state is InstanceState.STOPPING
    assert await process.wait() == -signal.SIGKILL
    await process.finish()
    assert gone(leader)
    await eventually(lambda: gone(child), "the child's end")


def test_ports_are_never_handed_out_twice() -> None:
    allocator = PortAllocator("127.0.0.1")
    ports = [allocator.allocate() for _ in range(50)]
    assert len(set(ports)) == 50
    assert allocator.held == frozenset(ports)
    allocator.release(ports[0])
    assert ports[0] not in allocator.held


def test_port_in_use_messages_are_recognised() -> None:
    python = b"OSError: [Errno 98] Address already in use"
    assert port_in_use_line([b"Traceback", python, b"more"]) == python
    node = b"Error: listen EADDRINUSE: address already in use :::3000"
    assert port_in_use_line([node]) == node
    assert port_in_use_line([b"listening on 3000"]) is None


def _stat_field(pid: int, index: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2 :].split()[index]


def test_reap_kills_what_a_dead_node_left_and_spares_a_live_nodes(tmp_path: Path) -> None:
    pid_files = PidFiles(tmp_path / "run")
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    mine = subprocess.Popen(["sleep", "60"], start_new_session=True)
    dead_owner = subprocess.Popen(["sleep", "60"])
    try:
        pid_files.write("mine", mine.pid)
        pid_files.write("orphan", orphan.pid)
        # The orphan's file names an owner that was killed and is not reaped yet (a zombie).
        dead_owner.kill()
        deadline = time.monotonic() + 10
        while not gone(dead_owner.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        owner_started = _stat_field(dead_owner.pid, 19)
        path = tmp_path / "run" / "orphan.pid"
        _, _, pgid, started = path.read_text().split()
        path.write_text(f"{dead_owner.pid} {owner_started} {pgid} {started}\n")
        (tmp_path / "run" / "garbage.pid").write_text("not a pid file")

        assert pid_files.reap() == [orphan.pid]
        assert orphan.wait(5) == -signal.SIGKILL
        assert mine.poll() is None
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["mine.pid"]
    finally:
        for proc in (orphan, mine, dead_owner):
            proc.kill()
            proc.wait()
