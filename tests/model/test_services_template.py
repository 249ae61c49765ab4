"""Loading long-running services (`Fogbank::Service`) and Cloud Map resources from templates."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import fogbank
from fogbank import TemplateError
from fogbank.model import (
    PYTHON_RUNTIMES,
    DeploymentConfig,
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    DnsRecord,
    HealthCheck,
    HealthCheckConfig,
    HealthCheckKind,
    Identity,
    Integration,
    IntegrationType,
    Layer,
    NamespaceSpec,
    NamespaceType,
    RegistryBinding,
    ServiceSpec,
    discovery_id,
    load_template,
)
from fogbank.model._intrinsics import parameter_values, resolve_template

TEMPLATES = Path(__file__).parent.parent / "templates"
SAM = "Transform: AWS::Serverless-2016-10-31\n"
REGION_ACCOUNT = "us-east-1:123456789012"
DISCOVERY_LAYER = f"arn:aws:lambda:{REGION_ACCOUNT}:layer:fogbank-discovery:1"
SHOP = """\
Shop:
  Type: AWS::ServiceDiscovery::PrivateDnsNamespace
  Properties: {Name: shop.local, Vpc: vpc-1}
Catalog:
  Type: AWS::ServiceDiscovery::Service
  Properties:
    Name: catalog
    NamespaceId: !Ref Shop
    DnsConfig: {DnsRecords: [{Type: A, TTL: 10}]}
"""


def write(directory: Path, *resources: str, dirs: tuple[str, ...] = ("svc",)) -> Path:
    """A SAM template of `resources` (each dedented on its own), with directories `dirs`."""
    for name in dirs:
        (directory / name).mkdir(parents=True, exist_ok=True)
    path = directory / "template.yaml"
    body = textwrap.indent("".join(textwrap.dedent(part) for part in resources), "  ")
    path.write_text(f"{SAM}Resources:\n{body}", encoding="utf-8")
    return path


def service(props: str, *, extra: str = "", name: str = "Web") -> str:
    """A `Fogbank::Service` resource with `props`, plus `extra` resources."""
    own = textwrap.indent(textwrap.dedent(props), " " * 4)
    return f"{name}:\n  Type: Fogbank::Service\n  Properties:\n{own}{textwrap.dedent(extra)}"


def load_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path, **kwargs)
    return str(caught.value)


def test_the_services_fixture() -> None:
    path = TEMPLATES / "services" / "template.yaml"
    app = load_template(path)
    assert app.warnings == ()
    assert app.namespaces == {
        "ShopNamespace": NamespaceSpec(
            "ShopNamespace", "shop.local", NamespaceType.DNS_PRIVATE, "The shop's services"
        )
    }
    assert app.discovery_services == {
        "CatalogDiscovery": DiscoveryServiceSpec(
            logical_id="CatalogDiscovery",
            name="catalog",
            namespace_logical_id="ShopNamespace",
            dns_records=(DnsRecord("A", 10), DnsRecord("SRV", 10)),
            routing_policy="MULTIVALUE",
            custom_health_failure_threshold=1,
        ),
        "StockDiscovery": DiscoveryServiceSpec(
            "StockDiscovery", "stock", "ShopNamespace", dns_records=(DnsRecord("SRV", 30),)
        ),
    }
    assert app.services["catalog"] == ServiceSpec(
        name="catalog",
        command=("python", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "${PORT}"),
        working_dir=path.parent.resolve() / "services" / "catalog",
        environment={"CATALOG_CURRENCY": "EUR"},
        logical_id="CatalogService",
        desired_count=2,
        health_check=HealthCheck(
            HealthCheckKind.HTTP,
            path="/health",
            interval_s=0.5,
            timeout_s=0.25,
            retries=2,
            start_period_s=10,
        ),
        zone="us-east-1a",
        deployment=DeploymentConfig(150, 50, circuit_breaker=True, rollback=False),
        registries=(RegistryBinding("shop.local", "catalog"),),
        stop_timeout_s=5,
    )
    (rest,) = (api for api in app.apis.values() if api.name == "shop-rest")
    routes = {route.route_key: route.integration for route in rest.routes}
    assert routes["GET /items/{id}"] == Integration(
        IntegrationType.HTTP_PROXY,
        uri="http://catalog.shop.local/items/{id}",
        http_method="GET",
        request_parameters={"integration.request.path.id": "method.request.path.id"},
    )
    assert app.functions["OrdersFunction"].latest.layers == (
        Layer(
            name="fogbank-discovery",
            content_dir=Path(fogbank.__file__).parent / "layers" / "discovery",
            arn=DISCOVERY_LAYER,
            compatible_runtimes=PYTHON_RUNTIMES,
        ),
    )


def test_fogbank_service_defaults_and_short_forms(tmp_path: Path) -> None:
    app = load_template(
        write(
            tmp_path,
            service(
                """\
                Command: exec python -m http.server "$PORT"
                WorkingDirectory: svc
                Environment: [{Name: MODE, Value: 1}]
                HealthCheck: {Command: curl -fs "localhost:$PORT/", HealthyThreshold: 3}
                Discovery: {Namespace: shop.local}
                """
            ),
            service("Command: [./run, '8000']\nDesiredCount: 0\n", name="Worker"),
            service(
                """\
                Command: [sleep, '1']
                HealthCheck: {Command: [CMD-SHELL, test -f ready], Interval: 0.05}
                Discovery: {Namespace: !GetAtt Shop.Arn, Name: batch}
                ServiceRegistries: [{RegistryArn: !Ref Catalog}]
                """,
                name="Batch",
            ),
            SHOP,
        )
    )
    base = tmp_path.resolve()
    assert app.services == {
        "Web": ServiceSpec(
            name="Web",
            command=("/bin/sh", "-c", 'exec python -m http.server "$PORT"'),
            working_dir=base / "svc",
            environment={"MODE": "1"},
            logical_id="Web",
            health_check=HealthCheck(
                HealthCheckKind.COMMAND,
                command=("/bin/sh", "-c", 'curl -fs "localhost:$PORT/"'),
                healthy_threshold=3,
            ),
            registries=(RegistryBinding("shop.local", "Web"),),
        ),
        "Worker": ServiceSpec(
            name="Worker",
            command=("./run", "8000"),
            working_dir=base,
            logical_id="Worker",
            desired_count=0,
        ),
        "Batch": ServiceSpec(
            name="Batch",
            command=("sleep", "1"),
            working_dir=base,
            logical_id="Batch",
            health_check=HealthCheck(
                HealthCheckKind.COMMAND, command=("/bin/sh", "-c", "test -f ready"), interval_s=0.05
            ),
            registries=(
                RegistryBinding("shop.local", "catalog"),
                RegistryBinding("shop.local", "batch"),
            ),
        ),
    }


def test_cloud_map_namespaces_and_services(tmp_path: Path) -> None:
    app = load_template(
        write(
            tmp_path,
            """\
            Api:
              Type: AWS::ServiceDiscovery::HttpNamespace
              Properties: {Name: api, Description: HTTP only}
            Public:
              Type: AWS::ServiceDiscovery::PublicDnsNamespace
              Properties: {Name: example.com}
            Users:
              Type: AWS::ServiceDiscovery::Service
              Properties:
                NamespaceId: !GetAtt Api.Id
                Description: user accounts
                Type: HTTP
            Www:
              Type: AWS::ServiceDiscovery::Service
              Properties:
                Name: www
                DnsConfig:
                  NamespaceId: !GetAtt Public.Arn
                  RoutingPolicy: weighted
                  DnsRecords: [{Type: cname, TTL: 300}]
                HealthCheckConfig: {Type: HTTPS, ResourcePath: /ping, FailureThreshold: 3}
            Tcp:
              Type: AWS::ServiceDiscovery::Service
              Properties:
                NamespaceId: !Ref Public
                DnsConfig: {DnsRecords: [{Type: SRV}]}
                HealthCheckConfig: {Type: TCP}
            """,
        )
    )
    assert app.namespaces == {
        "Api": NamespaceSpec("Api", "api", NamespaceType.HTTP, "HTTP only"),
        "Public": NamespaceSpec("Public", "example.com", NamespaceType.DNS_PUBLIC),
    }
    assert app.discovery_services == {
        "Users": DiscoveryServiceSpec(
            "Users", "Users", "Api", description="user accounts", type="HTTP"
        ),
        "Www": DiscoveryServiceSpec(
            "Www",
            "www",
            "Public",
            dns_records=(DnsRecord("CNAME", 300),),
            routing_policy="WEIGHTED",
            health_check=HealthCheckConfig("HTTPS", "/ping", 3),
        ),
        "Tcp": DiscoveryServiceSpec(
            "Tcp",
            "Tcp",
            "Public",
            dns_records=(DnsRecord("SRV", 60),),
            health_check=HealthCheckConfig("TCP"),
        ),
    }
    assert app.services == {}
    assert app.warnings == ()


def test_what_is_not_served_is_one_warning_each(tmp_path: Path) -> None:
    app = load_template(
        write(
            tmp_path,
            SHOP,
            """\
            Cron:
              Type: Fogbank::Schedule
              Properties: {}
            Mesh:
              Type: AWS::ServiceDiscovery::Mesh
              Properties: {}
            """,
        )
    )
    assert app.warnings == (
        "Cron (Fogbank::Schedule) is not served by fogbank",
        "Mesh (AWS::ServiceDiscovery::Mesh) is not served by fogbank",
    )


def test_cloud_map_instances(tmp_path: Path) -> None:
    app = load_template(
        write(
            tmp_path,
            SHOP,
            """\
            Database:
              Type: AWS::ServiceDiscovery::Instance
              Properties:
                ServiceId: !Ref Catalog
                InstanceId: db-1
                InstanceAttributes:
                  AWS_INSTANCE_IPV4: 10.0.0.9
                  AWS_INSTANCE_PORT: 5432
                  primary: true
            Replica:
              Type: AWS::ServiceDiscovery::Instance
              Properties:
                ServiceId: !GetAtt Catalog.Arn
                InstanceAttributes: {AWS_INSTANCE_IPV4: 10.0.0.10}
            Web:
              Type: Fogbank::Service
              Properties:
                Command: [python, -m, http.server]
                WorkingDirectory: svc
                Environment: {DB_INSTANCE: !Ref Database}
            """,
        )
    )
    assert app.discovery_instances == {
        "Database": DiscoveryInstanceSpec(
            "Database",
            "Catalog",
            "db-1",
            {"AWS_INSTANCE_IPV4": "10.0.0.9", "AWS_INSTANCE_PORT": "5432", "primary": "true"},
        ),
        "Replica": DiscoveryInstanceSpec(
            "Replica", "Catalog", "Replica", {"AWS_INSTANCE_IPV4": "10.0.0.10"}
        ),
    }
    assert app.discovery_instances["Database"].service_id == discovery_id("srv", "Catalog")
    assert app.discovery_instances["Database"].creator_request_id == "fogbank-template:Database"
    assert app.services["Web"].environment["DB_INSTANCE"] == "db-1"  # Ref gives the instance id
    assert app.warnings == ()


RESOURCES = {
    "Ns": {"Type": "AWS::ServiceDiscovery::PrivateDnsNamespace", "Properties": {"Name": "n"}},
    "Http": {"Type": "AWS::ServiceDiscovery::HttpNamespace", "Properties": {"Name": "h"}},
    "Svc": {"Type": "AWS::ServiceDiscovery::Service", "Properties": {"Name": "orders"}},
    "Bare": {"Type": "AWS::ServiceDiscovery::Service", "Properties": {}},
    "Tasks": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Family": "stock"}},
    "Anon": {"Type": "AWS::ECS::TaskDefinition", "Properties": {}},
    "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "shop"}},
    "Stock": {
        "Type": "AWS::ECS::Service",
        "Properties": {"ServiceName": "stock", "Cluster": {"Ref": "Cluster"}},
    },
    "ByArn": {
        "Type": "AWS::ECS::Service",
        "Properties": {"Cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}},
    },
    "Plain": {"Type": "AWS::ECS::Service", "Properties": {}},
    "Web": {"Type": "Fogbank::Service", "Properties": {"ServiceName": "web"}},
}
NS, SRV = discovery_id("ns", "Ns"), discovery_id("srv", "Svc")
CLOUD_MAP = f"arn:aws:servicediscovery:{REGION_ACCOUNT}"
ECS = f"arn:aws:ecs:{REGION_ACCOUNT}"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "Ns"}, NS),
        ({"Fn::GetAtt": ["Ns", "Id"]}, NS),
        ({"Fn::GetAtt": ["Ns", "Arn"]}, f"{CLOUD_MAP}:namespace/{NS}"),
        ({"Fn::GetAtt": ["Ns", "HostedZoneId"]}, "ZF7ED218EA9BE0"),
        ({"Fn::GetAtt": ["Http", "Arn"]}, f"{CLOUD_MAP}:namespace/{discovery_id('ns', 'Http')}"),
        ({"Ref": "Svc"}, SRV),
        ({"Fn::GetAtt": ["Svc", "Id"]}, SRV),
        ({"Fn::GetAtt": ["Svc", "Arn"]}, f"{CLOUD_MAP}:service/{SRV}"),
        ({"Fn::GetAtt": ["Svc", "Name"]}, "orders"),
        ({"Fn::GetAtt": ["Bare", "Name"]}, "Bare"),
        ({"Ref": "Tasks"}, f"{ECS}:task-definition/stock:1"),
        ({"Fn::GetAtt": ["Tasks", "TaskDefinitionArn"]}, f"{ECS}:task-definition/stock:1"),
        ({"Ref": "Anon"}, f"{ECS}:task-definition/Anon:1"),
        ({"Ref": "Cluster"}, "shop"),
        ({"Fn::GetAtt": ["Cluster", "Arn"]}, f"{ECS}:cluster/shop"),
        ({"Ref": "Stock"}, f"{ECS}:service/shop/stock"),
        ({"Fn::GetAtt": ["Stock", "ServiceArn"]}, f"{ECS}:service/shop/stock"),
        ({"Fn::GetAtt": ["Stock", "Name"]}, "stock"),
        ({"Ref": "ByArn"}, f"{ECS}:service/shop/ByArn"),
        ({"Ref": "Plain"}, f"{ECS}:service/default/Plain"),
        ({"Ref": "Web"}, "web"),
        ({"Fn::GetAtt": ["Web", "Name"]}, "web"),
        # Attributes AWS does not have keep the generic placeholders.
        ({"Fn::GetAtt": ["Http", "HostedZoneId"]}, "Http.HostedZoneId"),
        ({"Fn::Sub": "${Svc.Arn}"}, f"{CLOUD_MAP}:service/{SRV}"),
    ],
)
def test_ref_and_get_att_of_services_and_cloud_map(expression: Any, expected: str) -> None:
    holder = {"Type": "AWS::Test::Thing", "Properties": {"V": expression}}
    template = {"Resources": {**RESOURCES, "Holder": holder}}
    params, _ = parameter_values(template, {}, file="t.yaml")
    resolved = resolve_template(template, params, Identity(), file="t.yaml")
    assert resolved.resources["Holder"]["Properties"]["V"] == expected


def test_discovery_layer_in_another_region_and_account(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    literal = DISCOVERY_LAYER
    path = write(
        tmp_path,
        f"""\
        Fn:
          Type: AWS::Serverless::Function
          Properties:
            Runtime: python3.12
            Handler: app.handler
            CodeUri: src/
            Layers:
              - !Sub arn:aws:lambda:${{AWS::Region}}:${{AWS::AccountId}}:layer:fogbank-discovery:1
              - {literal}
        """,
    )
    app = load_template(path, identity=Identity("eu-west-1", "999999999999"))
    layers = app.functions["Fn"].latest.layers
    assert [layer.arn for layer in layers] == [
        "arn:aws:lambda:eu-west-1:999999999999:layer:fogbank-discovery:1",
        literal,
    ]
    assert {layer.content_dir for layer in layers} == {
        Path(fogbank.__file__).parent / "layers" / "discovery"
    }
    other = literal.replace(REGION_ACCOUNT, "eu-west-1:111111111111")
    path.write_text(path.read_text().replace(literal, other), encoding="utf-8")
    assert load_error(path, identity=Identity("eu-west-1", "999999999999")) == (
        f"{path}: resource Fn: property Layers: layer {other} is not defined in this template"
    )


SRV_ARN = f"{CLOUD_MAP}:service/srv-0123456789abcdef"
FUNCTION = """\
Orders:
  Type: AWS::Serverless::Function
  Properties: {Runtime: python3.12, Handler: app.handler, CodeUri: svc/}
"""
CMD = "Command: x\n"


@pytest.mark.parametrize(
    ("props", "prop", "message"),
    [
        (
            "WorkingDirectory: svc",
            "Command",
            "Command is required: a list of arguments or a shell string",
        ),
        (
            "Command: {run: x}",
            "Command",
            "expected a list of arguments or a string, got {'run': 'x'}",
        ),
        ("Command: [a, [b]]", "Command", "expected a list of arguments, got ['a', ['b']]"),
        (CMD + "WorkingDirectory: nowhere", "WorkingDirectory", "directory nowhere does not exist"),
        (
            CMD + "WorkingDirectory: template.yaml",
            "WorkingDirectory",
            "directory template.yaml is not a directory",
        ),
        (CMD + "DesiredCount: 101", "DesiredCount", "DesiredCount 101 is outside 0-100"),
        (
            CMD + "ServiceName: web app",
            "ServiceName",
            "service name 'web app' must be 1-255 letters, digits, - or _ (as in ECS)",
        ),
        (CMD + "StopTimeout: 121", "StopTimeout", "StopTimeout 121 is outside 0-120 seconds"),
        (
            CMD + "Environment: [{Value: 1}]",
            "Environment[0]",
            "expected {Name, Value}, got {'Value': 1}",
        ),
        (CMD + "Environment: {A: [1]}", "Environment.A", "expected a string, got [1]"),
        (
            CMD + "HealthCheck: {Path: /, Interval: 0.01}",
            "HealthCheck.Interval",
            "HealthCheck.Interval 0.01 is outside 0.05-300 seconds",
        ),
        (
            CMD + "HealthCheck: {Path: /, Timeout: soon}",
            "HealthCheck.Timeout",
            "HealthCheck.Timeout must be a number of seconds, got 'soon'",
        ),
        (
            CMD + "HealthCheck: {Path: /, Retries: 11}",
            "HealthCheck.Retries",
            "HealthCheck.Retries 11 is outside 1-10",
        ),
        (
            CMD + "HealthCheck: {Path: /, StartPeriod: 301}",
            "HealthCheck.StartPeriod",
            "HealthCheck.StartPeriod 301 is outside 0-300 seconds",
        ),
        (
            CMD + "HealthCheck: {Path: /, HealthyThreshold: 0}",
            "HealthCheck.HealthyThreshold",
            "HealthCheck.HealthyThreshold 0 is outside 1-10",
        ),
        (
            CMD + "HealthCheck: {Path: /, Command: x}",
            "HealthCheck",
            "give either Path or Command, not both",
        ),
        (CMD + "HealthCheck: {Interval: 5}", "HealthCheck", "a health check needs Path or Command"),
        (CMD + "HealthCheck: /health", "HealthCheck", "expected a mapping"),
        (CMD + "HealthCheck: {Path: health}", "HealthCheck.Path", "path health must start with /"),
        (
            CMD + "HealthCheck: {Command: [CMD-SHELL, a, b]}",
            "HealthCheck.Command",
            """expected ["CMD-SHELL", "command"] or ["CMD", "arg", ...],"""
            " got ['CMD-SHELL', 'a', 'b']",
        ),
        (
            CMD + "HealthCheck: {Command: []}",
            "HealthCheck.Command",
            "the health check command is empty",
        ),
        (
            CMD + "DeploymentConfiguration: {MaximumPercent: 100, MinimumHealthyPercent: 100}",
            "DeploymentConfiguration",
            "MaximumPercent 100 with MinimumHealthyPercent 100 leaves no room to replace",
        ),
        (
            CMD + "DeploymentConfiguration: {MinimumHealthyPercent: 101}",
            "DeploymentConfiguration.MinimumHealthyPercent",
            "DeploymentConfiguration.MinimumHealthyPercent 101 is outside 0-100%",
        ),
        (
            CMD + "DeploymentConfiguration: {DeploymentCircuitBreaker: {Enable: maybe}}",
            "DeploymentConfiguration.DeploymentCircuitBreaker.Enable",
            "expected true or false, got 'maybe'",
        ),
        (
            CMD + f"ServiceRegistries: [{{RegistryArn: {SRV_ARN}}}]",
            "ServiceRegistries[0].RegistryArn",
            f"{SRV_ARN} names no discovery service in this template",
        ),
        (
            CMD + "ServiceRegistries: [catalog]",
            "ServiceRegistries[0].RegistryArn",
            "expected a discovery service's ARN, got None",
        ),
        (
            CMD + "ServiceRegistries: {RegistryArn: x}",
            "ServiceRegistries",
            "expected a list, got {'RegistryArn': 'x'}",
        ),
        (CMD + "Discovery: {Name: web}", "Discovery.Namespace", "the namespace's name is required"),
    ],
)
def test_fogbank_service_errors(tmp_path: Path, props: str, prop: str, message: str) -> None:
    path = write(tmp_path, service(props + "\n"))
    assert load_error(path) == f"{path}: resource Web: property {prop}: {message}"


def test_service_names_are_unique_among_services_and_functions(tmp_path: Path) -> None:
    path = write(tmp_path, service(CMD + "ServiceName: Orders\n"), FUNCTION)
    assert load_error(path) == (
        f"{path}: resource Web: property ServiceName:"
        " Orders is also a function's name; services and functions share log names"
    )
    path = write(tmp_path, service(CMD + "ServiceName: api\n"), service(CMD, name="api"))
    assert load_error(path) == (
        f"{path}: resource api: property ServiceName: service name api is already used by Web"
    )


def discovery(props: str, namespace: str = SHOP) -> str:
    """The namespace `Shop` (or `namespace`) and a discovery service `X` with `props`."""
    return f"{namespace}X:\n  Type: AWS::ServiceDiscovery::Service\n  Properties: {props}\n"


IN_SHOP = "NamespaceId: !Ref Shop"
HTTP_NAMESPACE = "{}:\n  Type: AWS::ServiceDiscovery::HttpNamespace\n  Properties: {{Name: {}}}\n"
RECORD_A = "DnsRecords: [{Type: A}]"


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        (
            HTTP_NAMESPACE.format("Ns", "''"),
            "Ns: property Name",
            "namespace name '' is not valid",
        ),
        (
            SHOP + HTTP_NAMESPACE.format("Y", "Shop.Local"),
            "Y: property Name",
            "namespace Shop.Local is already declared by Shop",
        ),
        (
            discovery(f"{{Name: CATALOG, {IN_SHOP}}}"),
            "X: property Name",
            "service CATALOG is already declared in this namespace by Catalog",
        ),
        (discovery("{Name: -x}"), "X: property Name", "service name '-x' is not a valid DNS name"),
        (
            discovery("{Name: x}"),
            "X: property NamespaceId",
            "NamespaceId is required (for example !Ref MyNamespace)",
        ),
        (
            discovery("{NamespaceId: ns-1}"),
            "X: property NamespaceId",
            "ns-1 names no namespace in this template",
        ),
        (
            discovery(f"{{DnsConfig: {{NamespaceId: ns-2, {RECORD_A}}}}}"),
            "X: property DnsConfig.NamespaceId",
            "ns-2 names no namespace in this template",
        ),
        (
            discovery(
                f"{{NamespaceId: !Ref Api, DnsConfig: {{{RECORD_A}}}}}",
                HTTP_NAMESPACE.format("Api", "api"),
            ),
            "X: property DnsConfig",
            "api is an HTTP namespace, whose services have no DNS",
        ),
        (
            discovery(f"{{{IN_SHOP}, DnsConfig: {{DnsRecords: []}}}}"),
            "X: property DnsConfig.DnsRecords",
            "expected a list of records ({Type, TTL})",
        ),
        (
            discovery(f"{{{IN_SHOP}, DnsConfig: {{DnsRecords: [A]}}}}"),
            "X: property DnsConfig.DnsRecords[0]",
            "expected a record ({Type, TTL}), got 'A'",
        ),
        (
            discovery(f"{{{IN_SHOP}, DnsConfig: {{DnsRecords: [{{Type: MX}}]}}}}"),
            "X: property DnsConfig.DnsRecords[0].Type",
            "expected one of A, AAAA, SRV, CNAME, got MX",
        ),
        (
            discovery(f"{{{IN_SHOP}, DnsConfig: {{DnsRecords: [{{Type: A, TTL: -1}}]}}}}"),
            "X: property DnsConfig.DnsRecords[0].TTL",
            "TTL -1 is outside 0-2147483647 seconds",
        ),
        (
            discovery(f"{{{IN_SHOP}, DnsConfig: {{RoutingPolicy: RANDOM, {RECORD_A}}}}}"),
            "X: property DnsConfig.RoutingPolicy",
            "expected MULTIVALUE or WEIGHTED, got RANDOM",
        ),
        (
            discovery(
                f"{{{IN_SHOP}, HealthCheckConfig: {{Type: HTTP}}, HealthCheckCustomConfig: {{}}}}"
            ),
            "X: property HealthCheckCustomConfig",
            "give HealthCheckConfig or HealthCheckCustomConfig, not both",
        ),
        (
            discovery(f"{{{IN_SHOP}, HealthCheckConfig: {{Type: UDP}}}}"),
            "X: property HealthCheckConfig.Type",
            "expected HTTP, HTTPS or TCP, got UDP",
        ),
        (
            discovery(f"{{{IN_SHOP}, HealthCheckConfig: {{Type: HTTP, ResourcePath: ping}}}}"),
            "X: property HealthCheckConfig.ResourcePath",
            "path ping must start with /",
        ),
        (
            discovery(f"{{{IN_SHOP}, HealthCheckCustomConfig: {{FailureThreshold: 11}}}}"),
            "X: property HealthCheckCustomConfig.FailureThreshold",
            "HealthCheckCustomConfig.FailureThreshold 11 is outside 1-10",
        ),
        (
            discovery(f"{{{IN_SHOP}, Type: DNS_HTTP}}"),
            "X: property Type",
            "the only service type is HTTP, got DNS_HTTP",
        ),
    ],
)
def test_cloud_map_errors(tmp_path: Path, resources: str, where: str, message: str) -> None:
    path = write(tmp_path, resources)
    assert load_error(path) == f"{path}: resource {where}: {message}"


def instance(props: str) -> str:
    return SHOP + f"X:\n  Type: AWS::ServiceDiscovery::Instance\n  Properties: {props}\n"


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        (
            instance("{InstanceAttributes: {AWS_INSTANCE_IPV4: 10.0.0.1}}"),
            "X: property ServiceId",
            "ServiceId is required (for example !Ref MyService)",
        ),
        (
            instance("{ServiceId: srv-nope, InstanceAttributes: {AWS_INSTANCE_IPV4: 10.0.0.1}}"),
            "X: property ServiceId",
            "srv-nope names no service in this template",
        ),
        (
            instance("{ServiceId: !Ref Catalog}"),
            "X: property InstanceAttributes",
            "InstanceAttributes is required: a map such as {AWS_INSTANCE_IPV4: 10.0.0.5}",
        ),
        (
            instance("{ServiceId: !Ref Catalog, InstanceAttributes: {AWS_INSTANCE_IPV4: [1]}}"),
            "X: property InstanceAttributes.AWS_INSTANCE_IPV4",
            "expected a string, got [1]",
        ),
        (
            instance("{ServiceId: !Ref Catalog, InstanceAttributes: {a: 1}}")
            + "Y:\n  Type: AWS::ServiceDiscovery::Instance\n"
            + "  Properties: {ServiceId: !Ref Catalog, InstanceId: X, InstanceAttributes: {a: 1}}\n",
            "Y: property InstanceId",
            "instance X of Catalog is also X's",
        ),
    ],
)
def test_cloud_map_instance_errors(
    tmp_path: Path, resources: str, where: str, message: str
) -> None:
    path = write(tmp_path, resources)
    assert load_error(path) == f"{path}: resource {where}: {message}"
