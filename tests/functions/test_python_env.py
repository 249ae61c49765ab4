"""Python execution environments: real forked processes, driven through the local invoker."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest

from fogbank.functions._types import InvalidParameterValue, InvokeResult, TooManyRequests
from fogbank.model import Layer, TenancyMode

from .conftest import Harness, write_code

pytestmark = pytest.mark.anyio

CONTEXT_HANDLER = """
import os, sys

def handler(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": context.client_context,
        "tenant_id": context.tenant_id,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "MY_"))},
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "pid": os.getpid(),
    }
"""


async def test_context_and_environment_variables(harness: Harness) -> None:
    harness.function(
        "ctx", CONTEXT_HANDLER, environment={"MY_VAR": "hello"}, memory_mb=256, timeout_s=7
    )
    result = await harness.invoke("ctx", b'{"k": [1, 2]}')
    assert result.function_error is None
    doc = json.loads(result.payload)
    assert doc["event"] == {"k": [1, 2]}
    assert doc["function_name"] == "ctx"
    assert doc["function_version"] == "$LATEST"
    assert doc["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx"
    assert doc["memory_limit_in_mb"] == "256"
    assert doc["aws_request_id"] == result.request_id
    assert doc["log_group_name"] == "/aws/lambda/ctx"
    assert doc["log_stream_name"].split("/")[3].startswith("[$LATEST]")
    assert 0 < doc["remaining"] <= 7000
    assert doc["identity"] == [None, None]
    assert doc["client_context"] is None
    assert doc["tenant_id"] is None
    env = doc["env"]
    assert env["MY_VAR"] == "hello"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ctx"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"] == doc["cwd"] == doc["path0"]
    assert "AWS_LAMBDA_RUNTIME_API" not in env


async def test_reserved_variables_win_over_user_variables(harness: Harness) -> None:
    harness.function("ctx", CONTEXT_HANDLER, environment={"AWS_REGION": "mars-1"})
    doc = json.loads((await harness.invoke("ctx")).payload)
    assert doc["env"]["AWS_REGION"] == "us-east-1"


async def test_warm_environment_is_reused_and_reports_init_once(harness: Harness) -> None:
    harness.function("ctx", CONTEXT_HANDLER)
    first = await harness.invoke("ctx")
    second = await harness.invoke("ctx")
    assert json.loads(first.payload)["pid"] == json.loads(second.payload)["pid"]
    assert b"\tInit Duration: " in first.log
    assert b"Init Duration" not in second.log


async def test_log_lines(harness: Harness) -> None:
    harness.function(
        "logs",
        """
        import logging
        logging.getLogger().setLevel(logging.INFO)

        def handler(event, context):
            print("printed line")
            logging.info("logged line")
            return 1
        """,
    )
    result = await harness.invoke("logs")
    rid = result.request_id
    lines = result.log.decode().splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1] == "printed line"
    level, stamp, logged_rid, message = lines[2].split("\t")
    assert (level, logged_rid, message) == ("[INFO]", rid, "logged line")
    assert stamp.endswith("Z")
    assert lines[3] == f"END RequestId: {rid}"
    report = lines[4].split("\t")
    assert report[0] == f"REPORT RequestId: {rid}"
    assert report[1].startswith("Duration: ")
    assert report[1].endswith(" ms")
    assert report[2].startswith("Billed Duration: ")
    assert report[2].endswith(" ms")
    assert report[3] == "Memory Size: 128 MB"
    assert report[4].startswith("Max Memory Used: ")
    assert report[4].endswith(" MB")
    assert report[5].startswith("Init Duration: ")
    harness.invoker.logs.flush()
    stored = harness.invoker.logs.path("logs").read_bytes()
    assert stored == result.log


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"app.py": "def handler(e, c): return 1\n"},
            "apphandler",
            "Runtime.MalformedHandlerName",
            "Bad handler 'apphandler': not enough values to unpack (expected 2, got 1)",
        ),
        (
            {"app.py": "import not_a_module_anywhere\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_a_module_anywhere'",
        ),
        (
            {},
            "missing.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'missing': No module named 'missing'",
        ),
        (
            {"app.py": "def handler(e, c) return 1\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app': expected ':' (app.py, line 1)",
        ),
        (
            {"app.py": "def other(e, c): return 1\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        (
            {"app.py": "def handler(e, c): return {1, 2}\n"},
            "app.handler",
            "Runtime.MarshalError",
            "Unable to marshal response: Object of type set is not JSON serializable",
        ),
        (
            {"app.py": "raise RuntimeError('init boom')\n"},
            "app.handler",
            "RuntimeError",
            "init boom",
        ),
    ],
)
async def test_handler_loading_errors(
    harness: Harness, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    fn = harness.function("bad", "", handler=handler)
    (fn.latest.code_dir / "app.py").unlink()
    write_code(harness.root, "bad", files)
    result = await harness.invoke("bad")
    assert result.function_error == "Unhandled"
    doc = json.loads(result.payload)
    assert doc["errorType"] == error_type
    assert doc["errorMessage"] == message
    assert f"[ERROR] {error_type}: {message}".encode() in result.log


async def test_function_error_payload(harness: Harness) -> None:
    harness.function(
        "err",
        """
        def handler(event, context):
            raise ValueError("bad value " + str(event["n"]))
        """,
    )
    result = await harness.invoke("err", b'{"n": 7}')
    assert result.function_error == "Unhandled"
    assert result.error_type == "ValueError"
    doc = json.loads(result.payload)
    assert doc["errorMessage"] == "bad value 7"
    assert doc["errorType"] == "ValueError"
    assert doc["requestId"] == result.request_id
    assert len(doc["stackTrace"]) == 1
    assert 'app.py", line 3, in handler' in doc["stackTrace"][0]
    assert "_fogbank_runtime" not in "".join(doc["stackTrace"])


async def test_init_failure_is_retried_on_next_invoke(harness: Harness) -> None:
    fn = harness.function("flaky", "import nothing_here_yet\ndef handler(e, c): return 'ok'\n")
    first = await harness.invoke("flaky")
    assert json.loads(first.payload)["errorType"] == "Runtime.ImportModuleError"
    (fn.latest.code_dir / "nothing_here_yet.py").write_text("")
    second = await harness.invoke("flaky")
    assert second.function_error is None
    assert json.loads(second.payload) == "ok"
    assert b"Init Duration" in second.log


async def test_timeout_kills_and_replaces_environment(harness: Harness) -> None:
    harness.function(
        "slow",
        """
        import os, time
        def handler(event, context):
            if event.get("sleep"):
                time.sleep(30)
            return os.getpid()
        """,
        timeout_s=1,
    )
    pid_before = json.loads((await harness.invoke("slow")).payload)
    result = await harness.invoke("slow", b'{"sleep": true}')
    assert result.function_error == "Unhandled"
    doc = json.loads(result.payload)
    assert doc == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert f"{result.request_id} Task timed out after 1.00 seconds".encode() in result.log
    with pytest.raises(ProcessLookupError):
        os.kill(pid_before, 0)
    pid_after = json.loads((await harness.invoke("slow")).payload)
    assert pid_after != pid_before


async def test_crash_yields_exit_error_and_replacement(harness: Harness) -> None:
    harness.function(
        "crash",
        """
        import os, signal
        def handler(event, context):
            if event.get("exit") is not None:
                os._exit(event["exit"])
            if event.get("segv"):
                os.kill(os.getpid(), signal.SIGSEGV)
            return os.getpid()
        """,
    )
    harness.function("bystander", "import os\ndef handler(e, c): return os.getpid()\n")
    bystander_pid = json.loads((await harness.invoke("bystander")).payload)
    exited = await harness.invoke("crash", b'{"exit": 3}')
    assert json.loads(exited.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {exited.request_id} Error: Runtime exited with error: exit status 3",
    }
    segv = await harness.invoke("crash", b'{"segv": true}')
    assert json.loads(segv.payload)["errorMessage"].endswith(
        "Runtime exited with error: signal: segmentation fault"
    )
    assert segv.function_error == "Unhandled"
    ok = await harness.invoke("crash")
    assert ok.function_error is None
    assert json.loads((await harness.invoke("bystander")).payload) == bystander_pid


async def test_memory_limit_stops_environment(harness: Harness) -> None:
    harness.function(
        "hog",
        """
        import os, time
        def handler(event, context):
            block = bytearray(event["mb"] * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(event.get("hold", 0))
            return os.getpid()
        """,
        memory_mb=128,
        timeout_s=10,
    )
    held = await harness.invoke("hog", b'{"mb": 400, "hold": 5}')
    assert held.error_type == "Runtime.OutOfMemory"
    assert "exceeded its memory size of 128 MB" in json.loads(held.payload)["errorMessage"]
    quick = await harness.invoke("hog", b'{"mb": 300}')
    assert quick.error_type == "Runtime.OutOfMemory"
    fine = await harness.invoke("hog", b'{"mb": 1}')
    assert fine.function_error is None


async def test_layers_merge_in_order_and_code_wins(harness: Harness) -> None:
    site = "python"
    one = write_code(
        harness.root,
        "layer1",
        {f"{site}/shared.py": "WHO = 'layer1'\n", f"{site}/only1.py": "WHO = 'only1'\n"},
    )
    two = write_code(harness.root, "layer2", {f"{site}/shared.py": "WHO = 'layer2'\n"})
    from dataclasses import replace

    fn = harness.function(
        "layered",
        """
        import sys, shared, only1
        def handler(event, context):
            import local_only
            return [shared.WHO, only1.WHO, local_only.WHO, sys.path[:3]]
        """,
    )
    (fn.latest.code_dir / "local_only.py").write_text("WHO = 'code'\n")
    layers = (Layer(name="one", content_dir=one), Layer(name="two", content_dir=two))
    harness.deploy(replace(fn, latest=replace(fn.latest, layers=layers)))
    result = await harness.invoke("layered")
    shared, only1, local, path = json.loads(result.payload)
    assert (shared, only1, local) == ("layer2", "only1", "code")
    assert path[0] == str(fn.latest.code_dir)
    assert path[1].endswith("/python/lib/python3.11/site-packages")
    assert path[2].endswith("/python")


async def test_private_tmp_per_environment(harness: Harness) -> None:
    harness.function(
        "tmpuser",
        """
        import os, time
        def handler(event, context):
            path = "/tmp/" + event["name"]
            with open(path, "a") as fh:
                fh.write(event["who"])
            time.sleep(event.get("hold", 0))
            return sorted(os.listdir("/tmp")), open(path).read()
        """,
    )
    marker = f"marker-{uuid.uuid4().hex}"
    sentinel = Path(tempfile.mkstemp(prefix="fogbank-host-sentinel-", dir="/tmp")[1])
    try:
        a, b = await asyncio.gather(
            harness.invoke(
                "tmpuser", json.dumps({"who": "a", "hold": 0.5, "name": marker}).encode()
            ),
            harness.invoke(
                "tmpuser", json.dumps({"who": "b", "hold": 0.5, "name": marker}).encode()
            ),
        )
    finally:
        sentinel.unlink()  # noqa: ASYNC240 (test set-up, one syscall)
    listing_a, marker_a = json.loads(a.payload)
    listing_b, marker_b = json.loads(b.payload)
    assert (marker_a, marker_b) == ("a", "b")
    assert marker in listing_a
    assert marker in listing_b
    # The host's /tmp is hidden (only directories the environment needs are bound back).
    assert sentinel.name not in listing_a
    assert sentinel.name not in listing_b
    assert not Path("/tmp", marker).exists()  # noqa: ASYNC240 (one stat, after the fact)


async def test_tenant_isolation(harness: Harness) -> None:
    harness.function("tenanted", CONTEXT_HANDLER, tenancy=TenancyMode.PER_TENANT)
    a1 = json.loads((await harness.invoke("tenanted", tenant_id="alpha")).payload)
    b1 = json.loads((await harness.invoke("tenanted", tenant_id="beta")).payload)
    a2 = json.loads((await harness.invoke("tenanted", tenant_id="alpha")).payload)
    assert a1["tenant_id"] == a2["tenant_id"] == "alpha"
    assert b1["tenant_id"] == "beta"
    assert a1["pid"] == a2["pid"] != b1["pid"]
    with pytest.raises(InvalidParameterValue):
        await harness.invoke("tenanted")
    harness.function("plain", CONTEXT_HANDLER)
    with pytest.raises(InvalidParameterValue):
        await harness.invoke("plain", tenant_id="alpha")


async def test_reserved_concurrency_rejects_excess(harness: Harness) -> None:
    harness.function(
        "single",
        "import time\ndef handler(e, c):\n    time.sleep(e.get('hold', 0))\n    return 'done'\n",
        reserved_concurrency=1,
    )
    first = asyncio.create_task(harness.invoke("single", b'{"hold": 1}'))
    await asyncio.sleep(0.3)
    with pytest.raises(TooManyRequests) as info:
        await harness.invoke("single")
    assert info.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert json.loads((await first).payload) == "done"
    assert json.loads((await harness.invoke("single")).payload) == "done"


async def test_streaming_handler_sends_chunks_as_produced(harness: Harness) -> None:
    harness.function(
        "streamer",
        """
        import time
        def handler(event, context):
            def gen():
                for i in range(3):
                    yield f"chunk{i};"
                    time.sleep(0.2)
            return gen()
        """,
    )
    received: list[tuple[bytes, bool]] = []
    task: asyncio.Task[InvokeResult]

    async def sink(chunk: bytes) -> None:
        received.append((chunk, task.done()))

    task = asyncio.create_task(harness.invoke("streamer", sink=sink))
    result = await task
    assert [c for c, _ in received] == [b"chunk0;", b"chunk1;", b"chunk2;"]
    assert not any(done for _, done in received)
    assert result.streamed
    buffered = await harness.invoke("streamer")
    assert buffered.payload == b"chunk0;chunk1;chunk2;"


def _find_interpreter(name: str) -> str | None:
    """A working `python3.X` on PATH or in pyenv's standard place (shims that fail don't count)."""
    import glob
    import shutil
    import subprocess

    candidates = [shutil.which(name)]
    candidates += sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / "*" / "bin" / name)))
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0
        ):
            return candidate
    return None


@pytest.mark.parametrize("runtime", ["python3.9", "python3.13"])
async def test_runtime_mapped_to_another_interpreter(code_root: Path, runtime: str) -> None:
    interpreter = _find_interpreter(runtime)
    if interpreter is None:
        pytest.skip(f"no {runtime} interpreter on this machine")
    h = Harness(code_root, interpreters={runtime: interpreter})
    await h.invoker.start()
    try:
        code = write_code(
            code_root,
            "versioned",
            {"app.py": "import sys\ndef handler(e, c):\n    return list(sys.version_info[:2])\n"},
        )
        from fogbank.model import Function, FunctionConfig

        h.deploy(
            Function(
                latest=FunctionConfig(
                    name="versioned", runtime=runtime, handler="app.handler", code_dir=code
                )
            )
        )
        result = await h.invoke("versioned")
        assert result.function_error is None, result.payload
        assert json.loads(result.payload) == [3, int(runtime.removeprefix("python3."))]
    finally:
        await h.invoker.stop()
