"""The layer under the other interpreters functions run on: standard library only, Python 3.9+."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import LAYER_PYTHON, NAMESPACE, CloudMapServer, InstanceServer, closed_port

# What a function does with the layer: resolve, call (through a retry), and meet an error.
SCRIPT = """
import json, sys
import fogbank_discovery as discovery

found = discovery.resolve("catalog", "shop.local")
status, headers, body = discovery.request("GET", "catalog", "shop.local", "/items")
try:
    discovery.resolve("orders", "shop.local")
except discovery.ServiceNotFound as err:
    missing = str(err)
print(json.dumps({
    "version": list(sys.version_info[:2]),
    "first": found.instance_id,
    "status": status,
    "answered_by": json.loads(body)["name"],
    "after": discovery.resolve("catalog", "shop.local").instance_id,
    "missing": missing,
}))
"""


def find_interpreter(name: str) -> str | None:
    """A `python3.X` that runs: on PATH, else in pyenv's versions (a pyenv shim for a version
    that is not selected exists but fails)."""
    candidates = [shutil.which(name)]
    candidates += sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / "*" / "bin" / name)))
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["python3.9", "python3.13"])
def test_the_layer_runs_on_another_interpreter(
    name: str, cloudmap: CloudMapServer, instance_server: Callable[[str], InstanceServer]
) -> None:
    interpreter = find_interpreter(name)
    if interpreter is None:
        pytest.skip(f"no {name} on this machine")
    live = instance_server("live")
    cloudmap.register("catalog", "dead", closed_port(), zone="us-east-1a")
    cloudmap.register("catalog", "live", live.port, zone="us-east-1b")
    env = {
        "PATH": os.environ.get("PATH", ""),
        # As Lambda puts /opt/python on the path of a function with layers.
        "PYTHONPATH": str(LAYER_PYTHON),
        "AWS_ENDPOINT_URL_SERVICEDISCOVERY": cloudmap.url,
        "AVAILABILITY_ZONE": "us-east-1a",
    }

    done = subprocess.run(
        [interpreter, "-B", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "version": [3, int(name.removeprefix("python3."))],
        "first": "dead",
        "status": 200,
        "answered_by": "live",
        "after": "live",
        "missing": f"service 'orders' not found in namespace '{NAMESPACE}'",
    }
