"""Custom-runtime environments with real `bootstrap` processes: awslambdaric, curl, raw HTTP."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fogbank.functions._custom import CustomEnvironment
from fogbank.functions._types import EnvResult, EnvState, Invocation
from fogbank.model import FunctionConfig, Identity, Layer

pytestmark = pytest.mark.anyio

IDENTITY = Identity()
RIC_BOOTSTRAP = f'#!/bin/sh\nexec "{sys.executable}" -m awslambdaric "$_HANDLER"\n'

SCRIPTS = Path(__file__).parent / "custom_runtimes"


def script(name: str) -> str:
    """A runtime script from `custom_runtimes/`, pointed at this interpreter (with awslambdaric)."""
    return (SCRIPTS / name).read_text().replace("@PYTHON@", sys.executable)


APP = script("app.py.in")
# The urllib loop stands in where curl is missing.
LOOP_BOOTSTRAP = script("curl_bootstrap.sh" if shutil.which("curl") else "urllib_bootstrap.in")
# Streams three chunks, each only once the test's sink has acknowledged the one before (it
# touches a file), so the chunks are necessarily separate and the order is proven, not timed.
STREAM_BOOTSTRAP = script("stream_bootstrap.in")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Harness:
    """Writes functions into a temporary directory and stops every environment it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.envs: list[CustomEnvironment] = []

    def function(
        self,
        files: Mapping[str, str],
        *,
        timeout_s: int = 30,
        memory_mb: int = 128,
        layers: tuple[Layer, ...] = (),
        environment: Mapping[str, str] | None = None,
        executable: bool = True,
    ) -> FunctionConfig:
        code = self.root / f"fn-{uuid.uuid4().hex[:8]}"
        code.mkdir()
        for name, text in files.items():
            (code / name).write_text(text)
        if executable and (code / "bootstrap").exists():
            (code / "bootstrap").chmod(0o755)
        return FunctionConfig(
            name=code.name,
            runtime="provided.al2023",
            handler="app.handler",
            code_dir=code,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            layers=layers,
            environment=dict(environment or {}),
        )

    async def start(self, config: FunctionConfig) -> CustomEnvironment:
        env = CustomEnvironment(config, identity=IDENTITY, run_dir=self.root / "run")
        self.envs.append(env)
        await env.start()
        return env


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    yield h
    for env in h.envs:
        await env.stop()
        assert env.pid is None


def invocation(config: FunctionConfig, event: Any = None) -> Invocation:
    return Invocation(
        request_id=str(uuid.uuid4()),
        payload=json.dumps(event if event is not None else {}).encode(),
        invoked_arn=IDENTITY.function_arn(config.name),
        deadline_ms=int(time.time() * 1000) + config.timeout_s * 1000,
    )


def error_doc(result: EnvResult) -> dict[str, Any]:
    doc = json.loads(result.payload)
    assert isinstance(doc, dict)
    return doc


def platform_error(inv: Invocation, error_type: str, message: str) -> dict[str, str]:
    """The document Lambda itself writes when the environment fails an invocation."""
    return {
        "errorType": error_type,
        "errorMessage": f"RequestId: {inv.request_id} Error: {message}",
    }


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_awslambdaric_handler_runs_and_sees_its_context(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP}, memory_mb=256)
    env = await harness.start(config)
    inv = invocation(config, {"hello": "world"})
    result = await env.invoke(inv)
    assert result.error_type is None
    body = json.loads(result.payload)
    assert body["echo"] == {"hello": "world"}
    assert body["function_name"] == config.name
    assert body["aws_request_id"] == inv.request_id
    assert body["invoked_function_arn"] == inv.invoked_arn
    assert body["memory_limit_in_mb"] == "256"
    assert 0 < body["remaining_ms"] <= config.timeout_s * 1000
    assert body["tmpdir"] == str(harness.root / "run" / "tmp" / env.env_id)
    assert f"handling {inv.request_id}\n".encode() in result.output
    assert b"to stderr\n" in result.output
    assert result.max_memory_mb > 0
    assert not result.env_lost
    assert env.state is EnvState.IDLE


async def test_the_environment_is_reused_without_a_second_init(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP})
    env = await harness.start(config)
    assert await env.wait_ready()
    pid = env.pid
    first = await env.invoke(invocation(config, {"n": 1}))
    second = await env.invoke(invocation(config, {"n": 2}))
    assert json.loads(second.payload)["echo"] == {"n": 2}
    assert first.init_duration_ms is not None
    assert first.init_duration_ms > 0
    assert second.init_duration_ms is None
    assert env.pid == pid is not None
    # Each invocation gets its own output, nothing of the other's.
    assert first.output.count(b"handling") == second.output.count(b"handling") == 1


async def test_a_raised_exception_is_a_function_error(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP})
    env = await harness.start(config)
    result = await env.invoke(invocation(config, {"action": "raise"}))
    assert result.error_type == "ValueError"
    doc = error_doc(result)
    assert (doc["errorType"], doc["errorMessage"]) == ("ValueError", "bad input")
    assert isinstance(doc["stackTrace"], list)
    assert doc["stackTrace"]
    assert b"[ERROR] ValueError: bad input" in result.output
    assert not result.env_lost
    assert env.state is EnvState.IDLE


async def test_a_shell_bootstrap_loops_over_the_runtime_api(harness: Harness) -> None:
    env = await harness.start(config := harness.function({"bootstrap": LOOP_BOOTSTRAP}))
    for n in range(2):
        inv = invocation(config, {"n": n})
        result = await env.invoke(inv)
        assert result.error_type is None
        assert json.loads(result.payload) == {"id": inv.request_id, "event": {"n": n}}
        assert f"got {inv.request_id}\n".encode() in result.output


async def test_a_bootstrap_from_a_layer_runs_in_the_code_directory(
    harness: Harness, tmp_path: Path
) -> None:
    layer_dir = tmp_path / "layer"
    layer_dir.mkdir()
    (layer_dir / "bootstrap").write_text(RIC_BOOTSTRAP)
    (layer_dir / "bootstrap").chmod(0o755)
    config = harness.function({"app.py": APP}, layers=(Layer(name="ric", content_dir=layer_dir),))
    env = await harness.start(config)
    result = await env.invoke(invocation(config, {"via": "layer"}))
    assert json.loads(result.payload)["echo"] == {"via": "layer"}


async def test_an_init_error_is_reported_and_loses_the_environment(harness: Harness) -> None:
    bootstrap = RIC_BOOTSTRAP.replace('"$_HANDLER"', "missing.handler")
    config = harness.function({"bootstrap": bootstrap})
    env = await harness.start(config)
    pid = env.pid
    assert pid is not None
    assert not await env.wait_ready()
    result = await env.invoke(invocation(config))
    assert result.error_type == "Runtime.ImportModuleError"
    doc = error_doc(result)
    assert doc["errorMessage"] == "Unable to import module 'missing': No module named 'missing'"
    assert result.env_lost
    assert result.init_duration_ms is not None
    assert env.state is EnvState.DEAD
    assert gone(pid)


async def test_a_posted_init_error_kills_a_runtime_that_lingers(harness: Harness) -> None:
    script = f"""#!{sys.executable}
import os, time, urllib.request
url = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/init/error"
doc = b'{{"errorMessage": "no config", "errorType": "Runtime.Custom"}}'
headers = {{"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"}}
urllib.request.urlopen(urllib.request.Request(url, doc, headers)).read()
time.sleep(60)
"""
    config = harness.function({"bootstrap": script})
    env = await harness.start(config)
    pid = env.pid
    assert pid is not None
    result = await env.invoke(invocation(config))
    assert result.error_type == "Runtime.Custom"
    assert error_doc(result) == {"errorMessage": "no config", "errorType": "Runtime.Custom"}
    assert result.env_lost
    assert gone(pid)


async def test_a_bootstrap_that_exits_at_once(harness: Harness) -> None:
    config = harness.function({"bootstrap": "#!/bin/sh\necho starting\nexit 2\n"})
    env = await harness.start(config)
    inv = invocation(config)
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.ExitError"
    assert error_doc(result) == platform_error(
        inv, "Runtime.ExitError", "Runtime exited with error: exit status 2"
    )
    assert result.output == b"starting\n"
    assert result.env_lost
    assert result.init_duration_ms is not None


async def test_a_missing_bootstrap_is_an_invalid_entrypoint(harness: Harness) -> None:
    config = harness.function({"app.py": APP})
    env = await harness.start(config)
    assert env.state is EnvState.DEAD
    inv = invocation(config)
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.InvalidEntrypoint"
    expected = f"Couldn't find valid bootstrap(s): [{config.code_dir / 'bootstrap'}]"
    assert error_doc(result) == platform_error(inv, "Runtime.InvalidEntrypoint", expected)
    assert result.env_lost


async def test_a_bootstrap_that_is_not_executable(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP}, executable=False)
    env = await harness.start(config)
    inv = invocation(config)
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.InvalidEntrypoint"
    message = f"fork/exec {config.code_dir / 'bootstrap'}: permission denied"
    assert error_doc(result) == platform_error(inv, "Runtime.InvalidEntrypoint", message)


async def test_a_timeout_kills_the_process(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP}, timeout_s=1)
    env = await harness.start(config)
    pid = env.pid
    assert pid is not None
    inv = invocation(config, {"action": "sleep", "seconds": 30})
    result = await env.invoke(inv)
    assert result.error_type == "Sandbox.Timedout"
    assert error_doc(result) == platform_error(
        inv, "Sandbox.Timedout", "Task timed out after 1.00 seconds"
    )
    assert result.env_lost
    assert env.state is EnvState.DEAD
    assert env.pid is None
    assert gone(pid)


@pytest.mark.parametrize(
    ("action", "reason"),
    [("exit", "exit status 3"), ("segfault", "signal: segmentation fault")],
)
async def test_a_crash_is_an_exit_error(harness: Harness, action: str, reason: str) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP})
    env = await harness.start(config)
    inv = invocation(config, {"action": action})
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.ExitError"
    assert error_doc(result) == platform_error(
        inv, "Runtime.ExitError", f"Runtime exited with error: {reason}"
    )
    assert result.env_lost
    assert env.state is EnvState.DEAD


async def test_memory_past_memory_size_is_out_of_memory(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP}, memory_mb=128)
    env = await harness.start(config)
    inv = invocation(config, {"action": "allocate", "mb": 300})
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.OutOfMemory"
    assert error_doc(result) == platform_error(
        inv, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed"
    )
    assert b"MemorySize (128 MB)" in result.output
    assert result.max_memory_mb > 128
    assert result.env_lost


async def test_a_response_over_6_mb_is_a_function_error(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP})
    env = await harness.start(config)
    result = await env.invoke(invocation(config, {"action": "huge"}))
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert (
        "exceeded maximum allowed payload size (6291556 bytes)" in error_doc(result)["errorMessage"]
    )


async def test_a_runtime_that_dies_after_answering_fails_the_next_invocation(
    harness: Harness,
) -> None:
    config = harness.function({"bootstrap": LOOP_BOOTSTRAP}, environment={"EXIT_AFTER": "1"})
    env = await harness.start(config)
    assert (await env.invoke(invocation(config))).error_type is None
    inv = invocation(config)
    result = await env.invoke(inv)
    assert result.error_type == "Runtime.ExitError"
    assert error_doc(result)["errorMessage"].endswith("Runtime exited with error: exit status 5")
    assert result.env_lost


async def _stream(harness: Harness, event: str) -> tuple[EnvResult, list[str]]:
    acks = harness.root / "acks"
    acks.mkdir(exist_ok=True)
    config = harness.function({"bootstrap": STREAM_BOOTSTRAP}, environment={"ACK_DIR": str(acks)})
    env = await harness.start(config)
    inv = invocation(config, event)
    timeline: list[str] = []

    async def sink(chunk: bytes) -> None:
        timeline.append(f"{chunk.decode()} while {env.state.value}")
        (acks / f"{inv.request_id}-{len(timeline) - 1}").touch()

    result = await env.invoke(inv, sink)
    timeline.append("invocation done")
    return result, timeline


async def test_a_streamed_response_reaches_the_sink_chunk_by_chunk(harness: Harness) -> None:
    result, timeline = await _stream(harness, "ok")
    assert timeline == [
        "chunk-0; while busy",
        "chunk-1; while busy",
        "chunk-2; while busy",
        "invocation done",
    ]
    assert (result.error_type, result.payload, result.streamed) == (None, b"", True)


async def test_a_streamed_error_in_trailers_is_reported(harness: Harness) -> None:
    result, timeline = await _stream(harness, "fail")
    assert len(timeline) == 4
    assert result.error_type == "StreamError"
    assert error_doc(result) == {"errorMessage": "broke", "errorType": "StreamError"}
    assert result.streamed


async def test_stop_ends_the_process_and_removes_its_tmp(harness: Harness) -> None:
    config = harness.function({"bootstrap": RIC_BOOTSTRAP, "app.py": APP})
    env = await harness.start(config)
    assert await env.wait_ready()
    pid = env.pid
    assert pid is not None
    tmp = harness.root / "run" / "tmp" / env.env_id
    assert tmp.is_dir()
    await env.stop()
    assert gone(pid)
    assert not tmp.exists()
    assert env.state is EnvState.DEAD
    await env.stop()  # idempotent
