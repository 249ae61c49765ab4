"""The `fogbank` command line."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from fogbank._errors import ConfigError, FogbankError
from fogbank.cli import _admin, _invoke, _logs, _services, _up
from fogbank.cli._common import fail, find_template, load_app, parse_pairs
from fogbank.config import DEFAULT_IAM_CREDENTIALS, WARM_WAIT_S, FunctionsConfig, NodeConfig
from fogbank.model import Throttle

app = typer.Typer(
    name="fogbank",
    help="Run AWS SAM applications (Lambda, API Gateway, Cloud Map) locally, without Docker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TemplateOpt = Annotated[
    Path | None,
    typer.Option(
        "--template", "-t", help="SAM template (default: ./template.yaml, else the demo)."
    ),
]
StateDirOpt = Annotated[
    Path, typer.Option("--state-dir", help="Where logs and durable state live.")
]
OverridesOpt = Annotated[
    list[str] | None,
    typer.Option("--parameter-overrides", help="Template parameters as KEY=VALUE (repeatable)."),
]
RuntimeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--runtime", help="Map a runtime to an interpreter: python3.12=/usr/bin/python3.12."
    ),
]


def _functions_config(
    runtimes: list[str] | None,
    preload: list[str] | None,
    max_envs: int,
    idle: float,
    warm_first: bool = False,
) -> FunctionsConfig:
    return FunctionsConfig(
        interpreters=parse_pairs(runtimes or [], "--runtime"),
        preload=tuple(preload or ()),
        max_environments=max_envs,
        idle_timeout_s=idle,
        warm_wait_s=WARM_WAIT_S if warm_first else 0.0,
    )


def _account_throttle(value: str | None) -> Throttle | None:
    if value is None:
        return None
    rate, sep, burst = value.partition(":")
    try:
        throttle = Throttle(float(rate), int(burst))
    except ValueError:
        raise ConfigError(f"--account-throttle: expected RATE:BURST, got {value!r}") from None
    if not sep or throttle.rate_limit <= 0 or throttle.burst_limit <= 0:
        raise ConfigError(f"--account-throttle: expected positive RATE:BURST, got {value!r}")
    return throttle


def _dns_port(value: str) -> int | None:
    if value.lower() == "off":
        return None
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ConfigError(f"--dns-port: expected a port number or 'off', got {value!r}")
    return int(value)


@app.command()
def up(
    template: TemplateOpt = None,
    port: Annotated[int, typer.Option(help="Data-plane port (the application's APIs).")] = 3000,
    control_port: Annotated[int, typer.Option(help="Control-plane port (Lambda API).")] = 3001,
    host: Annotated[str, typer.Option(help="Interface for the data plane.")] = "127.0.0.1",
    parameter_overrides: OverridesOpt = None,
    state_dir: StateDirOpt = Path(".fogbank"),
    runtime: RuntimeOpt = None,
    preload: Annotated[
        list[str] | None, typer.Option(help="Module every environment starts with (repeatable).")
    ] = None,
    max_environments: Annotated[int, typer.Option(help="Node-wide concurrency limit.")] = 64,
    idle_timeout: Annotated[
        float, typer.Option(help="Seconds before an idle environment stops.")
    ] = 300.0,
    warm_first: Annotated[
        bool,
        typer.Option(
            "--warm-first/--eager-scale-out",
            help="Short invocations wait briefly for a busy warm environment instead of starting"
            " one: faster where process switches are dear, as in some VMs (docs/functions.md)."
            " The default starts one for every concurrent invocation, as Lambda does.",
        ),
    ] = False,
    reload: Annotated[
        bool,
        typer.Option(help="Restart a function's environments when its code or layers change."),
    ] = True,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Token the admin API requires (default: a new one each start); written to"
            " <state-dir>/admin-token.",
            envvar="FOGBANK_ADMIN_TOKEN",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Keep rate limits, quotas and caches in Redis (redis://HOST:PORT/DB), shared"
            " with every node given the same URL; needs fogbank[redis]."
        ),
    ] = None,
    account_throttle: Annotated[
        str | None,
        typer.Option(
            help="The account-level limit every API request passes, RATE:BURST (AWS's default"
            " quota: 10000:5000).",
        ),
    ] = None,
    iam_credentials: Annotated[
        list[str] | None,
        typer.Option(
            "--iam-credentials",
            help="Access key and secret that AWS_IAM routes accept SigV4 signatures from,"
            " KEY=SECRET (repeatable; default fogbank=fogbank).",
        ),
    ] = None,
    zone: Annotated[
        str | None,
        typer.Option(
            help="This node's availability-zone label (default: the region's 'a' zone): service"
            " instances carry it, the gateway prefers instances in it."
        ),
    ] = None,
    dns_port: Annotated[
        str,
        typer.Option(
            help="Port of the DNS server answering A and SRV queries for discovered services"
            " (dig @127.0.0.1 -p 8600 SRV NAME.NAMESPACE), or 'off'."
        ),
    ] = "8600",
    dns_host: Annotated[str, typer.Option(help="Interface of the DNS server.")] = "127.0.0.1",
    cloud_map_probe_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between probes of instances of Cloud Map services with a"
            " HealthCheckConfig (Route 53's interval: 30).",
            min=0.1,
        ),
    ] = 30.0,
) -> None:
    """Serve the application until Ctrl-C or SIGTERM."""
    try:
        path = find_template(template)
        overrides = parse_pairs(parameter_overrides or [], "--parameter-overrides")
        config = NodeConfig(
            admin_token=admin_token,
            host=host,
            port=port,
            control_port=control_port,
            state_dir=state_dir,
            functions=_functions_config(
                runtime, preload, max_environments, idle_timeout, warm_first
            ),
            redis_url=redis_url,
            iam_credentials=parse_pairs(iam_credentials or [], "--iam-credentials")
            or DEFAULT_IAM_CREDENTIALS,
            zone=zone,
            dns_host=dns_host,
            dns_port=_dns_port(dns_port),
            cloud_map_probe_interval_s=cloud_map_probe_interval,
        )
        throttle = _account_throttle(account_throttle)
        if throttle is not None:
            config = dataclasses.replace(config, account_throttle=throttle)
        application = load_app(path, overrides)
        _up.run(config, application, path, reload=reload)
    except FogbankError as exc:
        fail(str(exc))


@app.command()
def invoke(
    function: Annotated[
        str, typer.Argument(help="Function name or logical id, optionally NAME:QUALIFIER.")
    ],
    template: TemplateOpt = None,
    event: Annotated[
        str | None, typer.Option("--event", "-e", help="Event JSON file, or - for stdin.")
    ] = None,
    parameter_overrides: OverridesOpt = None,
    state_dir: StateDirOpt = Path(".fogbank"),
    runtime: RuntimeOpt = None,
    tenant_id: Annotated[
        str | None, typer.Option(help="Tenant id for PER_TENANT functions.")
    ] = None,
) -> None:
    """Invoke a function once: the result on stdout, its log on stderr."""
    try:
        path = find_template(template)
        if event == "-":
            payload = sys.stdin.buffer.read()
        elif event:
            try:
                payload = Path(event).read_bytes()
            except OSError as exc:
                fail(f"cannot read event file {event}: {exc.strerror}")
        else:
            payload = b"{}"
        config = NodeConfig(
            state_dir=state_dir, functions=_functions_config(runtime, None, 64, 300.0)
        )
        application = load_app(
            path, parse_pairs(parameter_overrides or [], "--parameter-overrides")
        )
        raise typer.Exit(_invoke.run(config, application, function, payload, tenant_id))
    except FogbankError as exc:
        fail(str(exc))


@app.command()
def logs(
    function: Annotated[str, typer.Argument(help="Function or service name.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    state_dir: StateDirOpt = Path(".fogbank"),
) -> None:
    """Print a function's log (START/END/REPORT lines and everything it printed), or a
    service's (every instance's output, each line tagged with its instance id)."""
    raise typer.Exit(_logs.run(state_dir / "logs", function, follow))


_admin.register(app)
app.add_typer(_services.services, name="services")


def main() -> None:
    app()
