"""`fogbank services list|scale|redeploy`: a running node's services, as ECS shows and updates
them (`DescribeServices`, `UpdateService --desired-count`, `--force-new-deployment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fogbank.cli._admin import Admin, StateOpt, TokenOpt, UrlOpt

services = typer.Typer(help="Long-running services: status, scaling, deployments.")

_DEFAULT_URL = "http://127.0.0.1:3001"
_State = Path(".fogbank")


def _print(service: dict[str, Any]) -> None:
    typer.echo(
        f"{service['serviceName']}  revision {service['revision']}  desired"
        f" {service['desiredCount']}  running {service['runningCount']}  healthy"
        f" {service['healthyCount']}  rollout {service['rolloutState']}"
        + (f" ({service['rolloutStateReason']})" if service["rolloutStateReason"] else "")
        + f"  restarts {service['restarts']}"
    )
    for task in service["tasks"]:
        reason = f" ({task['healthReason']})" if task["healthReason"] else ""
        typer.echo(
            f"    {task['taskId']}  pid {task['pid']}  port {task['port']}"
            f"  {task['lastStatus']}  {task['healthStatus']}{reason}  revision {task['revision']}"
        )


@services.command("list")
def list_services(
    control_url: UrlOpt = _DEFAULT_URL, state_dir: StateOpt = _State, token: TokenOpt = None
) -> None:
    """Every service with its deployment and its instances (ECS calls them tasks)."""
    admin = Admin(control_url, state_dir, token)
    for service in admin.call("GET", "/admin/services")["services"]:
        _print(service)


@services.command("scale")
def scale(
    name: Annotated[str, typer.Argument(help="Service name.")],
    count: Annotated[int, typer.Argument(help="The new desired count (0-100).")],
    control_url: UrlOpt = _DEFAULT_URL,
    state_dir: StateOpt = _State,
    token: TokenOpt = None,
) -> None:
    """Change a service's desired count (until the node restarts)."""
    _update(Admin(control_url, state_dir, token), name, {"desiredCount": count})


@services.command("redeploy")
def redeploy(
    name: Annotated[str, typer.Argument(help="Service name.")],
    control_url: UrlOpt = _DEFAULT_URL,
    state_dir: StateOpt = _State,
    token: TokenOpt = None,
) -> None:
    """Roll every instance over to fresh ones (ECS's --force-new-deployment)."""
    _update(Admin(control_url, state_dir, token), name, {"forceNewDeployment": True})


def _update(admin: Admin, name: str, change: dict[str, Any]) -> None:
    """ECS's UpdateService on the node's admin API; prints the service as it now is."""
    _print(admin.call("POST", f"/admin/services/{name}", json=change))
