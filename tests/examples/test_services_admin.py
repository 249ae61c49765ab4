"""Operating the services example on a running node: the admin API's service operations (as
ECS's DescribeServices / UpdateService), the `fogbank services` commands, and a code change in
a service's directory rolling its instances over (`fogbank up`'s reload)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread, wait_until
from .test_services_example import EXAMPLE

pytestmark = pytest.mark.slow
TOKEN = "admin-secret"
FOGBANK = str(Path(sys.executable).parent / "fogbank")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[NodeThread, Path]]:
    project = tmp_path / "app"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".fogbank", "__pycache__"))
    config = NodeConfig(port=0, control_port=0, state_dir=tmp_path / "state", admin_token=TOKEN)
    node = NodeThread(config, load_template(project / "template.yaml"), reload=True).start()
    try:
        wait_until(lambda: _count(node, "healthyCount") == 2, "two healthy instances")
        yield node, project
    finally:
        node.stop()


def _admin(node: NodeThread) -> httpx.Client:
    return httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {TOKEN}"})


def _catalog(node: NodeThread) -> dict[str, object]:
    with _admin(node) as client:
        resp = client.get("/admin/services/catalog")
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, dict)
    return body


def _count(node: NodeThread, field: str) -> object:
    return _catalog(node)[field]


def _tasks(node: NodeThread) -> list[dict[str, object]]:
    tasks = _catalog(node)["tasks"]
    assert isinstance(tasks, list)
    return tasks


def test_describe_scale_and_redeploy(shop: tuple[NodeThread, Path]) -> None:
    node, _ = shop
    with _admin(node) as client:
        listed = client.get("/admin/services").json()["services"]
        assert [s["serviceName"] for s in listed] == ["catalog"]
        first = _catalog(node)
        assert first["desiredCount"] == 2
        assert first["rolloutState"] == "COMPLETED"
        assert {t["lastStatus"] for t in _tasks(node)} == {"RUNNING"}
        assert {t["healthStatus"] for t in _tasks(node)} == {"HEALTHY"}

        scaled = client.post("/admin/services/catalog", json={"desiredCount": 3})
        assert scaled.status_code == 200
        assert scaled.json()["desiredCount"] == 3
        wait_until(lambda: _count(node, "healthyCount") == 3, "a third healthy instance")

        before = {t["taskId"] for t in _tasks(node)}
        redeployed = client.post("/admin/services/catalog", json={"forceNewDeployment": True})
        assert redeployed.status_code == 200
        assert redeployed.json()["revision"] != first["revision"]

        def rolled() -> bool:
            tasks = _tasks(node)
            return (
                len(tasks) == 3
                and not {t["taskId"] for t in tasks} & before
                and {t["healthStatus"] for t in tasks} == {"HEALTHY"}
            )

        wait_until(rolled, "three fresh instances after the forced deployment")
        # Through all of it the gateway kept serving.
        assert node.node is not None
        assert httpx.get(f"{node.node.url}/items/1").status_code == 200


def test_a_scaled_service_stays_scaled_after_a_restart(
    shop: tuple[NodeThread, Path], tmp_path: Path
) -> None:
    node, project = shop
    with _admin(node) as client:
        assert client.post("/admin/services/catalog", json={"desiredCount": 3}).status_code == 200
    wait_until(lambda: _count(node, "healthyCount") == 3, "a third healthy instance")
    node.stop()
    config = NodeConfig(port=0, control_port=0, state_dir=tmp_path / "state", admin_token=TOKEN)
    again = NodeThread(config, load_template(project / "template.yaml")).start()
    try:
        assert _count(again, "desiredCount") == 3
        wait_until(lambda: _count(again, "healthyCount") == 3, "three healthy after the restart")
    finally:
        again.stop()
    # The template's DesiredCount changes: the template wins, as a stack update would.
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("DesiredCount: 2", "DesiredCount: 1"))
    last = NodeThread(config, load_template(template)).start()
    try:
        assert _count(last, "desiredCount") == 1
    finally:
        last.stop()


def test_bad_updates_get_clear_errors(shop: tuple[NodeThread, Path]) -> None:
    node, _ = shop
    with _admin(node) as client:
        cases = [
            ("/admin/services/nope", {"desiredCount": 1}, 404, "Service not found: nope"),
            ("/admin/services/catalog", {"desiredCount": -1}, 400, None),
            ("/admin/services/catalog", {"desiredCount": "2"}, 400, None),
            ("/admin/services/catalog", {}, 400, None),
            ("/admin/services/catalog", {"replicas": 2}, 400, "Unknown field(s): replicas"),
        ]
        for path, body, status, message in cases:
            resp = client.post(path, json=body)
            assert resp.status_code == status, body
            if message is not None:
                assert resp.json() == {"message": message}
        assert client.get("/admin/services/nope").status_code == 404
        unauthenticated = httpx.get(f"{node.url}/admin/services")
        assert unauthenticated.status_code == 401
    assert _count(node, "desiredCount") == 2


def test_the_cli_lists_and_scales(shop: tuple[NodeThread, Path], tmp_path: Path) -> None:
    node, _ = shop
    common = ["--control-url", node.url, "--token", TOKEN]
    listed = subprocess.run(
        [FOGBANK, "services", "list", *common], capture_output=True, check=True, timeout=60
    )
    out = listed.stdout.decode()
    assert out.startswith("catalog  revision ")
    assert "desired 2  running 2  healthy 2  rollout COMPLETED" in out
    scaled = subprocess.run(
        [FOGBANK, "services", "scale", "catalog", "1", *common],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert "desired 1" in scaled.stdout.decode()
    wait_until(lambda: len(_tasks(node)) == 1, "the service scaled in to one instance")
    missing = subprocess.run(
        [FOGBANK, "services", "redeploy", "nope", *common], capture_output=True, timeout=60
    )
    assert missing.returncode == 2
    assert missing.stderr.decode().strip() == "error: NotFoundException: Service not found: nope"


def test_a_code_change_rolls_the_instances_over(shop: tuple[NodeThread, Path]) -> None:
    node, project = shop
    before = {t["taskId"] for t in _tasks(node)}
    app = project / "services" / "catalog" / "app.py"
    app.write_text(app.read_text().replace('"Espresso cup"', '"Espresso cup (new)"'))

    def serving_new_code() -> bool:
        tasks = _tasks(node)
        fresh = {t["taskId"] for t in tasks}
        return len(tasks) == 2 and not fresh & before and _count(node, "healthyCount") == 2

    wait_until(serving_new_code, "the instances rolled over to the new code", within=60)
    assert node.node is not None
    assert httpx.get(f"{node.node.url}/items/1").json()["name"] == "Espresso cup (new)"
