"""The `fogbank` admin subcommands against a running node, reading the token file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fogbank.cli import app
from fogbank.cli._up import with_admin_token
from fogbank.config import NodeConfig

from .conftest import TOKEN, Running, openapi

runner = CliRunner()


@pytest.fixture
def cli(running: Running, root: Path) -> list[str]:
    """Options that point a command at the running node, with the token in its file."""
    with_admin_token(NodeConfig(state_dir=root / "state", admin_token=TOKEN))
    return ["--control-url", running.control_url, "--state-dir", str(root / "state")]


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_token_file_is_private(root: Path) -> None:
    config = with_admin_token(NodeConfig(state_dir=root / "fresh"))
    assert config.admin_token is not None
    assert len(config.admin_token) >= 20
    path = root / "fresh" / "admin-token"
    assert path.read_text().strip() == config.admin_token
    assert path.stat().st_mode & 0o777 == 0o600


def test_import_deploy_update_and_flush(running: Running, root: Path, cli: list[str]) -> None:
    spec = root / "catalog.json"
    spec.write_text(json.dumps(openapi("/items", title="catalog")))
    api_id = json.loads(_run("apis", "import", str(spec), *cli))["id"]
    first = json.loads(_run("deploy", "catalog", "--stage", "prod", *cli))["id"]
    assert running.echo("/prod/items")["route"] == "GET /items"
    assert f"{api_id}  REST  catalog" in _run("apis", "list", *cli)
    updated = json.loads(_run("stages", "update", "catalog", "prod", "--variable", "a=1", *cli))
    assert updated["variables"] == {"a": "1"}
    spec.write_text(json.dumps(openapi("/items", "/more", title="catalog")))
    second = json.loads(_run("deploy", api_id, *cli))["id"]
    canary = json.loads(
        _run(
            "stages",
            "update",
            "catalog",
            "prod",
            "--canary-deployment",
            second,
            "--canary-percent",
            "10",
            *cli,
        )
    )
    assert canary["canarySettings"]["percentTraffic"] == 10.0
    promoted = json.loads(_run("stages", "update", "catalog", "prod", "--promote", *cli))
    assert promoted["deploymentId"] == second
    back = json.loads(_run("stages", "update", "catalog", "prod", "--rollback", first, *cli))
    assert back["deploymentId"] == first
    assert "flushed" in _run("cache", "flush", "catalog", "prod", *cli)


def test_keys_and_usage(running: Running, cli: list[str]) -> None:
    plan = running.v1.create_usage_plan(name="gold", quota={"limit": 100, "period": "DAY"})
    key = json.loads(_run("keys", "create", "alice", "--plan", "gold", *cli))
    assert key["enabled"] is True
    assert len(key["value"]) >= 20
    shown = _run("usage", "gold", "--days", "2", *cli)
    assert shown.splitlines()[0] == key["id"]
    assert shown.count("remaining 100") == 2
    assert running.node.app.api_keys[key["id"]].plan_ids == (plan["id"],)


def test_errors_are_one_line(running: Running, root: Path, cli: list[str]) -> None:
    result = runner.invoke(app, ["deploy", "nosuch", *cli])
    assert result.exit_code == 2
    assert "no API has the id or name nosuch" in result.output
    bad = root / "bad.json"
    bad.write_text("{}")
    result = runner.invoke(app, ["apis", "import", str(bad), *cli])
    assert result.exit_code == 2
    assert "BadRequestException" in result.output
    wrong = ["--control-url", running.control_url, "--token", "wrong"]
    result = runner.invoke(app, ["apis", "list", *wrong])
    assert "UnauthorizedException" in result.output
    result = runner.invoke(app, ["apis", "list", "--state-dir", str(root / "none")])
    assert "admin-token is missing" in result.output
