"""Code reload with real processes: edits reach the next invocation, in-flight ones finish old."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from fogbank.functions._reload import CodeWatcher, Reload
from fogbank.model import Function, FunctionConfig, Layer

from .conftest import Harness, write_code

pytestmark = pytest.mark.anyio

# Only ever a bound on waiting for something that must happen; nothing is timed.
WAIT_S = 15.0

APP = """
import os, pathlib, time

VALUE = "old"

def handler(event, context):
    gate = event.get("gate")
    if gate:
        # Held open until the test creates the gate file, so "in flight" is a fact, not a race.
        pathlib.Path(gate + ".started").touch()
        deadline = time.monotonic() + 2.5
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
    return {"value": VALUE, "pid": os.getpid()}
"""

LAYERED = """
import os, layermod

def handler(event, context):
    # An environment's parent is the zygote it was forked from.
    return {"value": layermod.VALUE, "zygote": os.getppid()}
"""

PRELOADED = """
import os, helper

def handler(event, context):
    return {"value": helper.VALUE, "pid": os.getpid()}
"""

# A custom runtime that answers with its pid and the files of the merged layers' bin/.
BOOTSTRAP = f"""#!{sys.executable}
import json, os, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"
tools = os.environ["PATH"].split(os.pathsep)[0]
while True:
    with urllib.request.urlopen(api + "/next") as reply:
        request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
    body = json.dumps({{"pid": os.getpid(), "tools": sorted(os.listdir(tools))}}).encode()
    urllib.request.urlopen(urllib.request.Request(api + f"/{{request_id}}/response", body)).read()
"""


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
"""

FOGBANK = str(Path(sys.executable).with_name("fogbank"))


class Reloads:
    """The reloads a watcher reported, awaited by the files they name."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Reload] = asyncio.Queue()
        self.seen: list[Reload] = []

    async def covering(self, *files: Path) -> list[Reload]:
        """Wait until reloads have named every one of `files` (a burst may take several)."""
        wanted = {file.resolve() for file in files}
        async with asyncio.timeout(WAIT_S):
            while not wanted <= {path for reload in self.seen for path in reload.changed}:
                self.seen.append(await self.queue.get())
        return self.seen


@contextlib.asynccontextmanager
async def watching(h: Harness) -> AsyncIterator[Reloads]:
    """Start the harness's invoker and a watcher over its app (deploy functions first)."""
    reloads = Reloads()
    watcher = CodeWatcher(h.invoker, lambda: h.app, h.config, on_reload=reloads.queue.put_nowait)
    await h.invoker.start()
    try:
        await watcher.start()
        try:
            yield reloads
        finally:
            await watcher.stop()
    finally:
        await h.invoker.stop()


async def call(h: Harness, name: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await h.invoke(name, json.dumps(event or {}).encode())
    assert result.error_type is None, result.payload
    doc: dict[str, Any] = json.loads(result.payload)
    return doc


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def appears(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def disappears(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    with contextlib.suppress(ProcessLookupError):
        while True:
            os.kill(pid, 0)
            assert time.monotonic() < deadline, f"process {pid} is still alive"
            time.sleep(0.01)


@pytest.fixture
def bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let environments write `.pyc` files, as they do on a developer's machine."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


@pytest.mark.usefixtures("bytecode")
async def test_edit_reaches_the_next_invocation(code_root: Path) -> None:
    h = Harness(code_root)
    h.function("hello", APP)
    source = code_root / "hello" / "app.py"
    async with watching(h) as reloads:
        before = await call(h, "hello")
        assert before["value"] == "old"
        # Same size, same second: the cached bytecode would still match the source.
        edit(source, 'VALUE = "old"', 'VALUE = "new"')
        [reload] = await reloads.covering(source)
        assert reload.functions == ("hello",)
        assert reload.describe(code_root) == "reloaded: hello (hello/app.py changed)"
        # The idle environment is stopped now, not when it would have idled out (300 s).
        await asyncio.to_thread(disappears, before["pid"])
        after = await call(h, "hello")
        assert after["value"] == "new"
        assert after["pid"] != before["pid"]


async def test_in_flight_invocation_finishes_on_the_old_code(code_root: Path) -> None:
    h = Harness(code_root)
    h.function("hello", APP)
    source = code_root / "hello" / "app.py"
    gate = code_root / "gate"
    async with watching(h) as reloads:
        warm = await call(h, "hello")
        in_flight = asyncio.create_task(call(h, "hello", {"gate": str(gate)}))
        await asyncio.to_thread(appears, Path(f"{gate}.started"))
        edit(source, 'VALUE = "old"', 'VALUE = "new"')
        await reloads.covering(source)
        started_after = await call(h, "hello")
        gate.touch()
        finished = await in_flight
        assert finished == warm  # the old code, in the environment it started in
        assert started_after["value"] == "new"
        # Once done, that environment is stopped rather than pooled again.
        await asyncio.to_thread(disappears, warm["pid"])
        # The environment that ran the old code was discarded, not pooled again.
        again = await call(h, "hello")
        assert again["value"] == "new"
        assert again["pid"] != warm["pid"]


async def test_layer_change_is_picked_up(code_root: Path) -> None:
    # The zygote imports layermod itself, so only a new zygote can see the change; the module
    # then imports a file added to the layer, which only a new merge of the layer holds.
    h = Harness(code_root, preload=("layermod",))
    content = write_code(code_root, "layer", {"python/layermod.py": 'VALUE = "old"\n'})
    h.function("layered", LAYERED, layers=(Layer(name="shared", content_dir=content),))
    async with watching(h) as reloads:
        before = await call(h, "layered")
        assert before["value"] == "old"
        added = content / "python" / "extra.py"
        added.write_text('VALUE = "added"\n')
        edit(content / "python" / "layermod.py", 'VALUE = "old"', "from extra import VALUE")
        seen = await reloads.covering(added, content / "python" / "layermod.py")
        assert all(reload.zygotes and reload.functions == ("layered",) for reload in seen)
        after = await call(h, "layered")
        assert after["value"] == "added"
        # No environment of the old zygote is left, so it is stopped too.
        assert after["zygote"] != before["zygote"]
        await asyncio.to_thread(disappears, before["zygote"])


async def test_unrelated_changes_leave_environments_alone(code_root: Path) -> None:
    h = Harness(code_root)
    h.function("a", APP)
    h.function("b", APP)
    a_dir, b_source = code_root / "a", code_root / "b" / "app.py"
    async with watching(h) as reloads:
        before = await call(h, "a")
        # Noise in a's directory that is not code, then a change outside every code directory,
        for name in ("__pycache__/app.cpython-311.pyc", ".app.py.swp", "app.py~", "4913"):
            (a_dir / name).parent.mkdir(exist_ok=True)
            (a_dir / name).write_text("noise")
        (a_dir / ".fogbank").mkdir()
        (a_dir / ".fogbank" / "state").write_text("noise")
        write_code(code_root, "elsewhere", {"notes.py": "x = 1\n"})
        # ... then a real change to b. Its reload comes after the noise was seen and ignored.
        edit(b_source, 'VALUE = "old"', 'VALUE = "new"')
        seen = await reloads.covering(b_source)
        assert [reload.functions for reload in seen] == [("b",)]
        assert [path.name for path in seen[0].changed] == ["app.py"]
        after = await call(h, "a")
        assert after == before  # same environment, same pid


async def test_preloaded_module_from_a_watched_directory_restarts_zygotes(
    code_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = write_code(code_root, "pre", {"helper.py": 'VALUE = "old"\n'})
    # The code directory is on the interpreter's own path (as an editable install puts it).
    monkeypatch.setenv("PYTHONPATH", str(code))
    h = Harness(code_root, preload=("helper",))
    h.function("pre", PRELOADED)
    async with watching(h) as reloads:
        assert (await call(h, "pre"))["value"] == "old"
        edit(code / "helper.py", 'VALUE = "old"', 'VALUE = "new"')
        [reload] = await reloads.covering(code / "helper.py")
        assert reload.zygotes
        assert (await call(h, "pre"))["value"] == "new"


async def test_custom_runtime_gets_a_fresh_environment_and_layer_merge(code_root: Path) -> None:
    h = Harness(code_root)
    content = write_code(code_root, "tools", {"bin/one": "#!/bin/sh\n"})
    code = write_code(code_root, "custom", {"bootstrap": BOOTSTRAP})
    (code / "bootstrap").chmod(0o755)
    layers = (Layer(name="tools", content_dir=content),)
    h.deploy(
        Function(
            latest=FunctionConfig(
                name="custom",
                runtime="provided.al2023",
                handler="unused",
                code_dir=code,
                layers=layers,
            )
        )
    )
    async with watching(h) as reloads:
        before = await call(h, "custom")
        assert before["tools"] == ["one"]
        (content / "bin" / "two").write_text("#!/bin/sh\n")
        await reloads.covering(content / "bin" / "two")
        after = await call(h, "custom")
        assert after["tools"] == ["one", "two"]
        assert after["pid"] != before["pid"]


async def test_an_edit_right_after_start_is_seen(code_root: Path) -> None:
    h = Harness(code_root)
    h.function("hello", APP)
    source = code_root / "hello" / "app.py"
    async with watching(h) as reloads:
        # start() returns only once the directories are watched, so nothing in between is lost.
        edit(source, 'VALUE = "old"', 'VALUE = "new"')
        [reload] = await reloads.covering(source)
        assert reload.functions == ("hello",)
        assert (await call(h, "hello"))["value"] == "new"


class Up:
    """`fogbank up` as a subprocess, its stdout read line by line."""

    def __init__(self, project: Path, *args: str) -> None:
        self.port = free_port()
        # Bytecode on, as on a developer's machine (see test_edit_reaches_the_next_invocation).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        command = [
            FOGBANK,
            "up",
            "--control-port",
            str(self.port),
            "--port",
            str(free_port()),
            "--dns-port",
            "0",
        ]
        self.stderr = project / "stderr.txt"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [*command, *args], cwd=project, env=env, stdout=subprocess.PIPE, stderr=err
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def line_with(self, text: str, timeout: float = 60.0) -> list[str]:
        """Every line printed up to and including the first one containing `text`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or text not in seen[-1]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line with {text!r} in {seen}"
            with contextlib.suppress(queue.Empty):
                line = self.lines.get(timeout=remaining)
                assert line is not None, f"fogbank up exited: {self.stderr.read_text()}"
                seen.append(line)
        return seen

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.stderr.read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_code(tmp_path, ".", {"src/app.py": APP, "template.yaml": TEMPLATE})


@pytest.fixture
def up(project: Path) -> Iterator[Up]:
    node = Up(project)
    try:
        yield node
    finally:
        node.stop()


def test_fogbank_up_serves_an_edited_handler(project: Path, up: Up) -> None:
    # The banner follows start-up, by which time the directories are watched.
    up.line_with("reload: on")
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{up.port}",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )

    def value() -> str:
        doc = json.loads(client.invoke(FunctionName="Hello", Payload=b"{}")["Payload"].read())
        return str(doc["value"])

    assert value() == "old"
    edit(project / "src" / "app.py", 'VALUE = "old"', 'VALUE = "new"')
    assert up.line_with("reloaded:")[-1] == "reloaded: Hello (src/app.py changed)"
    assert value() == "new"


def test_fogbank_up_no_reload(project: Path) -> None:
    node = Up(project, "--no-reload")
    try:
        printed = node.line_with("Ctrl-C to stop")
    finally:
        node.stop()
    while (line := node.lines.get(timeout=WAIT_S)) is not None:
        printed.append(line)
    assert printed[-1].startswith("stopping")
    assert not any(line.startswith("reload") for line in printed)
