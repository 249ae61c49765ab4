"""The command line, run as a real subprocess: `fogbank invoke`, `fogbank logs`, `fogbank up`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from fogbank.cli import _functions_config
from fogbank.config import WARM_WAIT_S

FOGBANK = str(Path(sys.executable).with_name("fogbank"))

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src
Resources:
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Environment:
        Variables:
          GREETING: Hello
  Broken:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.broken
"""

APP = """\
import os

def handler(event, context):
    print("greeting", event.get("name"))
    return {"message": f"{os.environ['GREETING']}, {event.get('name', 'world')}!"}

def broken(event, context):
    raise KeyError("missing")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return tmp_path


def run(args: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [FOGBANK, *args], cwd=cwd, input=stdin, capture_output=True, timeout=60, check=False
    )


def test_invoke_prints_result_and_logs(project: Path) -> None:
    proc = run(["invoke", "Greeter", "-e", "-"], project, b'{"name": "Ada"}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"message": "Hello, Ada!"}
    log = proc.stderr.decode()
    assert log.startswith("START RequestId: ")
    assert "greeting Ada\n" in log
    assert "REPORT RequestId: " in log


def test_invoke_event_file_and_function_error(project: Path) -> None:
    (project / "event.json").write_text('{"name": "Bob"}')
    ok = run(["invoke", "Greeter", "--event", "event.json"], project)
    assert json.loads(ok.stdout) == {"message": "Hello, Bob!"}
    failed = run(["invoke", "Broken"], project)
    assert failed.returncode == 1
    doc = json.loads(failed.stdout)
    assert doc["errorType"] == "KeyError"
    assert doc["errorMessage"] == "'missing'"


def test_invoke_bad_input_is_one_line(project: Path) -> None:
    unknown = run(["invoke", "Nope"], project)
    assert unknown.returncode == 2
    assert (
        unknown.stderr.decode()
        .strip()
        .endswith("Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nope")
    )
    assert b"Traceback" not in unknown.stderr
    not_json = run(["invoke", "Greeter", "-e", "-"], project, b"{nope")
    assert not_json.returncode == 2
    assert b"not valid JSON" in not_json.stderr
    assert b"Traceback" not in not_json.stderr
    missing = run(["invoke", "Greeter", "-e", "missing.json"], project)
    assert missing.returncode == 2
    assert b"missing.json" in missing.stderr


def test_broken_template_is_one_clear_line(project: Path) -> None:
    (project / "template.yaml").write_text(TEMPLATE.replace("python3.12", "python2.7"))
    proc = run(["invoke", "Greeter"], project)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert "template.yaml" in err
    assert "Greeter" in err
    assert "Runtime" in err
    assert "Traceback" not in err


def test_logs_reads_what_invoke_wrote(project: Path) -> None:
    run(["invoke", "Greeter", "-e", "-"], project, b'{"name": "Cy"}')
    proc = run(["logs", "Greeter"], project)
    assert proc.returncode == 0
    text = proc.stdout.decode()
    assert "greeting Cy\n" in text
    assert text.count("START RequestId:") == 1
    assert run(["logs", "Nobody"], project).returncode == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("fogbank up did not listen")


def test_up_serves_and_stops_gracefully(project: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            FOGBANK,
            "up",
            "--control-port",
            str(port),
            "--port",
            str(_free_port()),
            "--dns-port",
            "0",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port, proc)
        client = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED),
        )
        resp = client.invoke(FunctionName="Greeter", Payload=b'{"name": "Di"}')
        assert json.loads(resp["Payload"].read()) == {"message": "Hello, Di!"}
        follow = subprocess.Popen(
            [FOGBANK, "logs", "Greeter", "--follow"], cwd=project, stdout=subprocess.PIPE
        )
        client.invoke(FunctionName="Greeter", Payload=b'{"name": "Eve"}')
        # Read what `logs --follow` prints until both lines came (it starts in ~1 s on a
        # loaded machine), then interrupt it: it must stop cleanly.
        assert follow.stdout is not None
        followed, deadline = "", time.monotonic() + 30
        while "greeting Eve" not in followed and time.monotonic() < deadline:
            followed += follow.stdout.readline().decode()
        follow.send_signal(signal.SIGINT)
        follow.communicate(timeout=10)
        assert follow.returncode == 0
        assert "greeting Di" in followed
        assert "greeting Eve" in followed
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    banner = out.decode()
    assert "Greeter" in banner
    assert f"http://127.0.0.1:{port}" in banner
    assert "stopping" in banner


def test_up_port_in_use_is_one_line(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(["up", "--control-port", str(port)], project)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_demo_is_served_without_a_template(tmp_path: Path) -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [FOGBANK, "invoke", "hello", "-e", "-", "--state-dir", str(tmp_path / "st")],
        cwd=tmp_path,
        input=b'{"name": "demo"}',
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["message"] == "Hello, demo! (stage dev)"


def test_warm_first_is_opt_in() -> None:
    assert _functions_config(None, None, 64, 300.0).warm_wait_s == 0.0
    assert _functions_config(None, None, 64, 300.0, warm_first=True).warm_wait_s == WARM_WAIT_S
    wide = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [FOGBANK, "up", "--help"], capture_output=True, timeout=30, check=False, env=wide
    )
    assert "--warm-first" in proc.stdout.decode()
    assert "--eager-scale-out" in proc.stdout.decode()


def test_help_lists_commands() -> None:
    proc = subprocess.run([FOGBANK, "--help"], capture_output=True, timeout=30, check=False)
    text = textwrap.dedent(proc.stdout.decode())
    for command in ("up", "invoke", "logs"):
        assert command in text


SLOW_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: slow.handler
      Timeout: 10
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /slow, Method: GET}
"""


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "slow.py").write_text(
        "import time\n"
        "def handler(event, context):\n"
        "    time.sleep(1.5)\n"
        "    return {'done': True}\n"
    )
    (tmp_path / "template.yaml").write_text(SLOW_TEMPLATE)
    port = _free_port()
    proc = subprocess.Popen(
        [
            FOGBANK,
            "up",
            "--port",
            str(port),
            "--control-port",
            str(_free_port()),
            "--no-reload",
            "--dns-port",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    result: dict[str, object] = {}

    def call() -> None:
        import httpx

        resp = httpx.get(f"http://127.0.0.1:{port}/slow", timeout=20)
        result["status"], result["body"] = resp.status_code, resp.json()

    try:
        _wait_port(port, proc)
        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.5)  # the request is in flight (the handler sleeps 1.5 s)
        proc.send_signal(signal.SIGTERM)
        worker.join(20)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result == {"status": 200, "body": {"done": True}}
    assert proc.returncode == 0, err
    assert b"stopping" in out
