"""`fogbank apis|deploy|stages|keys|usage|cache`: the common admin operations, over HTTP.

Each command talks to a running node's admin API (`--control-url`, default the node's control
port on loopback) with the admin token from `--token`, `FOGBANK_ADMIN_TOKEN`, or the file
`fogbank up` writes, `<state-dir>/admin-token`. An API may be named by its id or its name.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from fogbank._errors import ConfigError
from fogbank.cli._common import fail, parse_pairs

TOKEN_FILE = "admin-token"

UrlOpt = Annotated[
    str,
    typer.Option("--control-url", help="The node's control plane.", envvar="FOGBANK_CONTROL_URL"),
]
StateOpt = Annotated[
    Path, typer.Option("--state-dir", help="Where `fogbank up` wrote the admin token.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="The admin token (default: <state-dir>/admin-token).",
        envvar="FOGBANK_ADMIN_TOKEN",
    ),
]

apis = typer.Typer(help="Import and list APIs.", no_args_is_help=True)
stages = typer.Typer(help="Change stages: variables, canary, rollback.", no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
cache = typer.Typer(help="Stage response caches.", no_args_is_help=True)


class Admin:
    """A small client of the admin API; every failure is one line and exit status 2."""

    def __init__(self, url: str, state_dir: Path, token: str | None) -> None:
        if token is None:
            path = state_dir / TOKEN_FILE
            try:
                token = path.read_text(encoding="utf-8").strip()
            except OSError:
                fail(f"no admin token: {path} is missing (is `fogbank up` running?); pass --token")
        self.client = httpx.Client(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the node at {self.client.base_url}: {exc}")
        if response.status_code >= 400:
            kind = response.headers.get("x-amzn-errortype", f"HTTP {response.status_code}")
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            fail(f"{kind}: {message}")
        return response.json() if response.content else None

    def api(self, ref: str) -> tuple[str, bool]:
        """(api id, True for an HTTP API) for an id or a name."""
        rest = self.call("GET", "/restapis")["item"]
        http = self.call("GET", "/v2/apis")["items"]
        for item in rest:
            if ref in (item["id"], item["name"]):
                return str(item["id"]), False
        for item in http:
            if ref in (item["apiId"], item["name"]):
                return str(item["apiId"]), True
        fail(f"no API has the id or name {ref}")


def show(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@apis.command("import")
def import_api(
    file: Annotated[Path, typer.Argument(help="OpenAPI document, JSON or YAML.")],
    http: Annotated[bool, typer.Option("--http", help="Import as an HTTP API (v2).")] = False,
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Create an API from an OpenAPI document (deploy it with `fogbank deploy`)."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    admin = Admin(control_url, state_dir, token)
    if http:
        show(admin.call("PUT", "/v2/apis", json={"body": body.decode("utf-8", "replace")}))
    else:
        show(admin.call("POST", "/restapis", params={"mode": "import"}, content=body))


@apis.command("list")
def list_apis(
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Every REST and HTTP API with its stages and their deployments."""
    admin = Admin(control_url, state_dir, token)
    for item in admin.call("GET", "/restapis")["item"]:
        typer.echo(f"{item['id']}  REST  {item['name']}")
        for stage in admin.call("GET", f"/restapis/{item['id']}/stages")["item"]:
            typer.echo(f"    {stage['stageName']} -> {stage['deploymentId']}")
    for item in admin.call("GET", "/v2/apis")["items"]:
        typer.echo(f"{item['apiId']}  HTTP  {item['name']}")
        for stage in admin.call("GET", f"/v2/apis/{item['apiId']}/stages")["items"]:
            typer.echo(f"    {stage['stageName']} -> {stage['deploymentId']}")


def deploy(
    api: Annotated[str, typer.Argument(help="API id or name.")],
    stage: Annotated[
        str | None, typer.Option("--stage", "-s", help="Point this stage at it.")
    ] = None,
    description: Annotated[str, typer.Option(help="The deployment's description.")] = "",
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Snapshot an API's routes as a new deployment, optionally onto a stage."""
    admin = Admin(control_url, state_dir, token)
    api_id, http = admin.api(api)
    if http:
        body: dict[str, Any] = {"description": description}
        if stage:
            stages_now = admin.call("GET", f"/v2/apis/{api_id}/stages")["items"]
            if stage not in [s["stageName"] for s in stages_now]:
                admin.call("POST", f"/v2/apis/{api_id}/stages", json={"stageName": stage})
            body["stageName"] = stage
        show(admin.call("POST", f"/v2/apis/{api_id}/deployments", json=body))
        return
    body = {"description": description, **({"stageName": stage} if stage else {})}
    show(admin.call("POST", f"/restapis/{api_id}/deployments", json=body))


@stages.command("update")
def update_stage(
    api: Annotated[str, typer.Argument(help="REST API id or name.")],
    stage: Annotated[str, typer.Argument(help="Stage name.")],
    variable: Annotated[
        list[str] | None, typer.Option("--variable", "-v", help="Stage variable K=V (repeatable).")
    ] = None,
    canary_percent: Annotated[
        float | None, typer.Option("--canary-percent", help="Share of traffic for the canary.")
    ] = None,
    canary_deployment: Annotated[
        str | None, typer.Option("--canary-deployment", help="Deployment the canary serves.")
    ] = None,
    promote: Annotated[bool, typer.Option(help="Promote the canary into the stage.")] = False,
    remove_canary: Annotated[bool, typer.Option(help="End the canary.")] = False,
    rollback: Annotated[
        str | None, typer.Option("--rollback", help="Point the stage at this deployment.")
    ] = None,
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Change a REST stage: variables, canary, promotion, rollback."""
    try:
        variables = parse_pairs(variable or [], "--variable")
    except ConfigError as exc:
        fail(str(exc))
    ops: list[dict[str, str]] = [
        {"op": "replace", "path": f"/variables/{k}", "value": v} for k, v in variables.items()
    ]
    if canary_deployment is not None:
        ops.append(
            {"op": "replace", "path": "/canarySettings/deploymentId", "value": canary_deployment}
        )
    if canary_percent is not None:
        ops.append(
            {
                "op": "replace",
                "path": "/canarySettings/percentTraffic",
                "value": str(canary_percent),
            }
        )
    if promote:
        ops += [
            {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"},
            {"op": "copy", "from": "/canarySettings/stageVariableOverrides", "path": "/variables"},
            {"op": "copy", "from": "/canarySettings/deploymentId", "path": "/deploymentId"},
        ]
    if remove_canary:
        ops.append({"op": "remove", "path": "/canarySettings"})
    if rollback is not None:
        ops.append({"op": "replace", "path": "/deploymentId", "value": rollback})
    if not ops:
        fail("nothing to change: give --variable, --canary-percent, --promote, --rollback, ...")
    admin = Admin(control_url, state_dir, token)
    api_id, _ = admin.api(api)
    show(admin.call("PATCH", f"/restapis/{api_id}/stages/{stage}", json={"patchOperations": ops}))


@keys.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    plan: Annotated[str | None, typer.Option("--plan", help="Usage plan id or name.")] = None,
    value: Annotated[str | None, typer.Option(help="The key (20-128 characters).")] = None,
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Create an enabled API key, optionally in a usage plan; prints it with its value."""
    admin = Admin(control_url, state_dir, token)
    plan_id = _plan(admin, plan) if plan else None
    body: dict[str, Any] = {"name": name, "enabled": True}
    if value is not None:
        body["value"] = value
    key = admin.call("POST", "/apikeys", json=body)
    if plan_id:
        admin.call(
            "POST", f"/usageplans/{plan_id}/keys", json={"keyId": key["id"], "keyType": "API_KEY"}
        )
    show(key)


def usage(
    plan: Annotated[str, typer.Argument(help="Usage plan id or name.")],
    key: Annotated[str | None, typer.Option("--key", help="Only this key id.")] = None,
    days: Annotated[int, typer.Option(help="How many days back from today (UTC).")] = 7,
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Requests per key per day, and what the quota had left."""
    admin = Admin(control_url, state_dir, token)
    plan_id = _plan(admin, plan)
    end = datetime.datetime.now(datetime.UTC).date()
    start = end - datetime.timedelta(days=max(days, 1) - 1)
    params = {"startDate": start.isoformat(), "endDate": end.isoformat()}
    if key:
        params["keyId"] = key
    found = admin.call("GET", f"/usageplans/{plan_id}/usage", params=params)
    for key_id, per_day in found["values"].items():
        typer.echo(key_id)
        for offset, (used, remaining) in enumerate(per_day):
            day = start + datetime.timedelta(days=offset)
            typer.echo(f"  {day}  used {used}  remaining {remaining}")


@cache.command("flush")
def flush(
    api: Annotated[str, typer.Argument(help="REST API id or name.")],
    stage: Annotated[str, typer.Argument(help="Stage name.")],
    control_url: UrlOpt = "http://127.0.0.1:3001",
    state_dir: StateOpt = Path(".fogbank"),
    token: TokenOpt = None,
) -> None:
    """Drop a stage's cached responses."""
    admin = Admin(control_url, state_dir, token)
    api_id, _ = admin.api(api)
    admin.call("DELETE", f"/restapis/{api_id}/stages/{stage}/cache/data")
    typer.echo(f"flushed the cache of {api_id}/{stage}")


def _plan(admin: Admin, ref: str) -> str:
    for item in admin.call("GET", "/usageplans")["item"]:
        if ref in (item["id"], item["name"]):
            return str(item["id"])
    fail(f"no usage plan has the id or name {ref}")


def register(app: typer.Typer) -> None:
    """Add the admin commands to the `fogbank` command line."""
    app.add_typer(apis, name="apis")
    app.command("deploy")(deploy)
    app.add_typer(stages, name="stages")
    app.add_typer(keys, name="keys")
    app.command("usage")(usage)
    app.add_typer(cache, name="cache")
