"""Loading services in the Fargate shape: `AWS::ECS::TaskDefinition` + `AWS::ECS::Service`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fogbank.model import (
    DeploymentConfig,
    HealthCheck,
    HealthCheckKind,
    RegistryBinding,
    ServiceSpec,
    load_template,
)
from tests.model.test_services_template import SHOP, TEMPLATES, load_error, write

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest"


def task(containers: str, *, name: str = "Task", metadata: str = "") -> str:
    """A task definition `name` whose `ContainerDefinitions` are `containers` (a YAML list)."""
    body = textwrap.indent(textwrap.dedent(containers), " " * 6)
    meta = f"  Metadata: {metadata}\n" if metadata else ""
    return (
        f"{name}:\n  Type: AWS::ECS::TaskDefinition\n{meta}  Properties:\n"
        f"    ContainerDefinitions:\n{body}"
    )


def ecs_service(
    props: str = "", *, name: str = "Web", task_ref: str = "!Ref Task", metadata: str = ""
) -> str:
    """An ECS service `name` running `task_ref`, with `props` (dedented) and `metadata`."""
    own = textwrap.indent(textwrap.dedent(props).rstrip("\n") + "\n", " " * 4)
    meta = f"  Metadata: {metadata}\n" if metadata else ""
    return (
        f"{name}:\n  Type: AWS::ECS::Service\n{meta}  Properties:\n"
        f"    TaskDefinition: {task_ref}\n{own}"
    )


def test_the_services_fixture_runs_the_stock_task() -> None:
    path = TEMPLATES / "services" / "template.yaml"
    app = load_template(path)
    check = (
        "import os, urllib.request;"
        " urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'])"
    )
    assert app.services["stock"] == ServiceSpec(
        name="stock",
        command=("python", "-m", "uvicorn", "app:app", "--port", "${PORT}"),
        working_dir=path.parent.resolve() / "services" / "catalog",
        environment={"CATALOG_CURRENCY": "USD"},
        logical_id="StockService",
        health_check=HealthCheck(
            HealthCheckKind.COMMAND,
            command=("python", "-c", check),
            interval_s=5,
            timeout_s=2,
            retries=3,
            start_period_s=10,
        ),
        deployment=DeploymentConfig(200, 100),
        registries=(RegistryBinding("shop.local", "stock"),),
        stop_timeout_s=10,
        task_family="stock",
    )
    assert list(app.services) == ["catalog", "stock"]


def test_local_image_path_defaults_and_what_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "svc" / "app").mkdir(parents=True)
    app = load_template(
        write(
            tmp_path,
            task(
                """\
                - Name: log-router
                  Image: amazon/aws-for-fluent-bit
                  Essential: false
                - Name: web
                  Image: ./svc
                  Command: [./serve, --port, '$PORT']
                  WorkingDirectory: app
                  Secrets: [{Name: TOKEN, ValueFrom: !Sub "arn:aws:ssm:${AWS::Region}::t"}]
                  HealthCheck: {Command: [CMD-SHELL, test -e /proc/1]}
                - Name: xray
                  Image: amazon/aws-xray-daemon
                """,
            ),
            task("- {Image: ., WorkingDirectory: /app, Command: [x]}\n", name="Spare"),
            ecs_service(
                """\
                Cluster: default
                LaunchType: FARGATE
                ServiceRegistries: [{RegistryArn: !GetAtt Catalog.Arn, ContainerName: web}]
                """,
                task_ref="Task:1",  # family and revision; without Family, the family is its id
                metadata="{Fogbank: {Zone: us-east-1b}}",
            ),
            "Cluster:\n  Type: AWS::ECS::Cluster\n  Properties: {}\n",
            SHOP,
        )
    )
    assert app.services == {
        "Web": ServiceSpec(
            name="Web",
            command=("./serve", "--port", "$PORT"),
            working_dir=tmp_path.resolve() / "svc" / "app",
            logical_id="Web",
            health_check=HealthCheck(
                HealthCheckKind.COMMAND, command=("/bin/sh", "-c", "test -e /proc/1")
            ),
            zone="us-east-1b",
            registries=(RegistryBinding("shop.local", "catalog"),),
            task_family="Task",
        )
    }
    assert app.warnings == (
        "Task: fogbank runs container web only; not run: log-router, xray",
        "Task: the Secrets of container web are not resolved by fogbank",
        "Spare (AWS::ECS::TaskDefinition) is run by no AWS::ECS::Service, so fogbank runs nothing"
        " for it",
    )


HINT = (
    "is not a local directory: give the task definition Metadata: {Fogbank: {Directory: ./path}},"
    " or make Image a local path (./path)"
)
C0 = "Task: property ContainerDefinitions[0]"
CMD_FORMS = """expected ["CMD-SHELL", "command"] or ["CMD", "arg", ...]"""


def web(props: str) -> str:
    """A task definition with the one container `web`, whose properties are `props` (flow style)."""
    return task(f"- {{Name: web, {props}}}\n")


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        (web(f"Image: {IMAGE}, Command: [x]"), f"{C0}.Image", f"image {IMAGE} {HINT}"),
        (web("Command: [x]"), f"{C0}.Image", f"image (none) {HINT}"),
        (web("Image: ./gone, Command: [x]"), f"{C0}.Image", "directory ./gone does not exist"),
        (
            task(
                "- {Name: web, Image: nginx, Command: [x]}\n",
                metadata="{Fogbank: {Directory: gone}}",
            ),
            "Task: property Metadata.Fogbank.Directory",
            "directory gone does not exist",
        ),
        (
            web("Image: ./svc"),
            f"{C0}.Command",
            "the container needs a Command: fogbank cannot run the image's own",
        ),
        (
            web("Image: ./svc, Command: [x], WorkingDirectory: sub"),
            f"{C0}.WorkingDirectory",
            "directory sub does not exist",
        ),
        (
            task("- {Name: a, Essential: false}\n- {Name: b, Essential: false}\n"),
            "Task: property ContainerDefinitions",
            "no container is essential; fogbank runs one",
        ),
        (
            task("[]\n"),
            "Task: property ContainerDefinitions",
            "expected a list of container definitions",
        ),
        (
            web("Image: ./svc, Command: [x], HealthCheck: {Command: [curl, x]}"),
            f"{C0}.HealthCheck.Command",
            f"{CMD_FORMS}, got ['curl', 'x']",
        ),
        (
            web("Image: ./svc, Command: [x], HealthCheck: {Command: curl x}"),
            f"{C0}.HealthCheck.Command",
            f"{CMD_FORMS}, got 'curl x'",
        ),
        (
            web("Image: ./svc, Command: [x], HealthCheck: {Path: /}"),
            f"{C0}.HealthCheck",
            "a health check needs Command",
        ),
        (
            web("Image: ./svc, Command: [x], HealthCheck: {Command: [CMD, x], Interval: 4}"),
            f"{C0}.HealthCheck.Interval",
            "HealthCheck.Interval 4 is outside 5-300 seconds",
        ),
        (
            web("Image: ./svc, Command: [x], HealthCheck: {Command: [CMD, x], Timeout: 0.5}"),
            f"{C0}.HealthCheck.Timeout",
            "HealthCheck.Timeout must be a whole number, got 0.5",
        ),
        (
            web("Image: ./svc, Command: [x], StopTimeout: 1"),
            f"{C0}.StopTimeout",
            "StopTimeout 1 is outside 2-120 seconds",
        ),
        (
            web("Image: ./svc, Command: [x], Environment: [{Value: x}]"),
            f"{C0}.Environment[0]",
            "expected {Name, Value}, got {'Value': 'x'}",
        ),
    ],
)
def test_task_definition_errors(tmp_path: Path, resources: str, where: str, message: str) -> None:
    path = write(tmp_path, resources, ecs_service())
    assert load_error(path) == f"{path}: resource {where}: {message}"


TASK = web("Image: ./svc, Command: [x]")
OTHER_TASK = "arn:aws:ecs:us-east-1:123456789012:task-definition/other:3"


@pytest.mark.parametrize(
    ("service", "prop", "message"),
    [
        (
            ecs_service(task_ref="''"),
            "TaskDefinition",
            "TaskDefinition is required (for example !Ref Task)",
        ),
        (
            ecs_service(task_ref=OTHER_TASK),
            "TaskDefinition",
            f"task definition {OTHER_TASK} is not in this template",
        ),
        (ecs_service("DesiredCount: -1"), "DesiredCount", "DesiredCount -1 is outside 0-100"),
        (
            ecs_service("ServiceRegistries: [{RegistryArn: srv-unknown}]"),
            "ServiceRegistries[0].RegistryArn",
            "srv-unknown names no discovery service in this template",
        ),
        (
            ecs_service("DeploymentConfiguration: {MaximumPercent: 99}"),
            "DeploymentConfiguration.MaximumPercent",
            "DeploymentConfiguration.MaximumPercent 99 is outside 100-1000%",
        ),
        (
            ecs_service("ServiceName: Fn"),
            "ServiceName",
            "Fn is also a function's name; services and functions share log names",
        ),
    ],
)
def test_ecs_service_errors(tmp_path: Path, service: str, prop: str, message: str) -> None:
    function = "Fn:\n  Type: AWS::Serverless::Function\n"
    function += "  Properties: {Runtime: python3.12, Handler: a.h, CodeUri: svc/}\n"
    path = write(tmp_path, TASK, service, function)
    assert load_error(path) == f"{path}: resource Web: property {prop}: {message}"
