"""`fogbank up`: serve a SAM application until interrupted."""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import signal
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fogbank._errors import ConfigError, FogbankError
from fogbank._node import Node, reachable_host
from fogbank.cli._routes import routes_table
from fogbank.config import NodeConfig
from fogbank.functions._reload import Reload
from fogbank.functions._traffic import Shift
from fogbank.model import App

ADMIN_TOKEN_FILE = "admin-token"

# Piped output (CI logs, `| tee`) gets room for the URL columns instead of rich's 80.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _banner(node: Node, template: Path) -> None:
    app = node.app
    out.print(f"[bold]fogbank[/] serving [cyan]{template}[/]")
    table = Table(title="Functions", show_lines=False)
    for column in ("Function", "Runtime", "Handler", "Versions", "Aliases"):
        table.add_column(column)
    for fn in sorted(app.functions.values(), key=lambda f: f.name):
        versions = ", ".join(["$LATEST", *fn.versions])
        aliases = ", ".join(
            f"{a.name}→{a.function_version}"
            + "".join(f" +{v}:{w:.0%}" for v, w in a.additional_weights.items())
            for a in fn.aliases.values()
        )
        table.add_row(fn.name, fn.latest.runtime, fn.latest.handler, versions, aliases or "-")
    out.print(table)
    used = sorted({fn.latest.runtime for fn in app.functions.values() if fn.latest.is_python})
    for runtime in used:
        out.print(f"runtime {runtime} → {node.config.functions.interpreter_for(runtime)}")
    for warning in app.warnings:
        out.print(f"[yellow]warning:[/] {warning}", markup=True)
    if app.apis or app.function_urls:
        out.print(routes_table(app, node.port, reachable_host(node.config.host)))
    for key in app.api_keys.values():
        # Keys SAM creates have no value in the template: this is where users find them.
        state = "" if key.enabled else "  (disabled)"
        out.print(f"API key {key.name}: [bold]{key.value}[/]  (x-api-key){state}")
    if app.services:
        out.print(_services_table(node))
    out.print(f"APIs: [bold]{node.url}[/]   (see docs/gateway.md for the URL rules)")
    out.print(
        f"Lambda API: [bold]{node.control_url}[/]  "
        f"(aws lambda invoke --endpoint-url {node.control_url} --function-name NAME out.json)"
    )
    out.print(
        f"admin API: [bold]{node.control_url}[/]  token [bold]{node.admin_token}[/]"
        f" (in {node.config.state_dir / ADMIN_TOKEN_FILE}; see docs/admin.md)"
    )
    out.print(
        f"Cloud Map API: [bold]{node.control_url}[/]  (boto3 servicediscovery with"
        " Config(inject_host_prefix=False); see docs/discovery.md)"
    )
    if node.dns is not None:
        dns = f"{node.config.dns_host} -p {node.dns.port}"
        out.print(f"DNS: [bold]dig @{dns} SRV SERVICE.NAMESPACE[/]")
    out.print(f"logs: {node.config.logs_dir}   Ctrl-C to stop")
    if node.watcher is not None:
        out.print("reload: on (code and layer changes apply to the next invocation)")


def _services_table(node: Node) -> Table:
    table = Table(title="Services", show_lines=False)
    for column in ("Service", "Command", "Desired", "Health check", "Registered as"):
        table.add_column(column, overflow="fold")
    for spec in sorted(node.app.services.values(), key=lambda s: s.name):
        check = spec.health_check
        probe = {
            "HTTP": f"GET {check.path}",
            "COMMAND": " ".join(check.command),
            "NONE": "process alive",
        }[check.kind.value]
        table.add_row(
            spec.name,
            " ".join(spec.command),
            str(spec.desired_count),
            f"{probe} every {check.interval_s:g} s",
            "\n".join(f"{b.service}.{b.namespace}" for b in spec.registries) or "-",
        )
    return table


def with_admin_token(config: NodeConfig) -> NodeConfig:
    """The config with an admin token (a new one unless given), written to
    `<state-dir>/admin-token`, readable by the owner only, for the admin subcommands."""
    token = config.admin_token or secrets.token_urlsafe(24)
    path = config.state_dir / ADMIN_TOKEN_FILE
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the admin token to {path}: {exc.strerror}") from exc
    return replace(config, admin_token=token)


def _shifted(shift: Shift) -> None:
    weight = f"{shift.weight:.0%} on version {shift.new_version}"
    out.print(f"{shift.function}:{shift.alias} {shift.outcome}: {weight}", markup=False)


async def serve(config: NodeConfig, app: App, template: Path, *, reload: bool = True) -> None:
    base = Path.cwd()

    def reloaded(change: Reload) -> None:
        out.print(change.describe(base), markup=False, soft_wrap=True)

    config = with_admin_token(config)
    node = Node(config, app, reload=reload, on_reload=reloaded, on_shift=_shifted)
    await node.start()
    # What is loaded by now (the app model, the libraries, botocore's service models) lives as
    # long as the node: out of the collector's sight, a full collection no longer walks it all
    # (measured: the collector's share of the front's CPU under load fell from 4.2% to 1.1%).
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        _banner(node, template)
        await stop.wait()
        out.print("stopping: finishing in-flight requests")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await node.stop()


def run(config: NodeConfig, app: App, template: Path, *, reload: bool = True) -> None:
    try:
        import uvloop

        uvloop.run(serve(config, app, template, reload=reload))
    except ImportError:
        asyncio.run(serve(config, app, template, reload=reload))
    except FogbankError:
        raise
