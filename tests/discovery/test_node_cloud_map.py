"""The Cloud Map API on a real node's control port, next to the Lambda and admin APIs: boto3
creates a namespace and a service with a `HealthCheckConfig`, registers an external instance,
and the node's prober takes it out of HEALTHY discovery when its server goes away."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import dns.message
import dns.query
import dns.rdatatype
import pytest
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank.config import NodeConfig
from fogbank.model import App, load_template

from ..conftest import NodeThread, cloud_map_client


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    config = NodeConfig(
        port=0, control_port=0, state_dir=tmp_path / "state", cloud_map_probe_interval_s=0.1
    )
    running = NodeThread(config, App.build()).start()
    try:
        yield running
    finally:
        running.stop()


def _client(node: NodeThread) -> ServiceDiscoveryClient:
    return cloud_map_client(node.url)


def _healthy(client: ServiceDiscoveryClient, status: str = "HEALTHY") -> list[str]:
    found = client.discover_instances(
        NamespaceName="web.local",
        ServiceName="api",
        HealthStatus=status,  # type: ignore[arg-type]
    )
    return [f"{i['InstanceId']}:{i.get('HealthStatus')}" for i in found["Instances"]]


def test_an_external_instance_is_probed_out_of_healthy_discovery(node: NodeThread) -> None:
    client = _client(node)
    op = client.create_http_namespace(Name="web.local")
    assert client.get_operation(OperationId=op["OperationId"])["Operation"]["Status"] == "SUCCESS"
    (namespace,) = client.list_namespaces()["Namespaces"]
    service = client.create_service(
        Name="api",
        NamespaceId=namespace["Id"],
        HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 1},
    )["Service"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client.register_instance(
        ServiceId=service["Id"],
        InstanceId="web-1",
        Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(server.server_port)},
    )
    assert _healthy(client) == ["web-1:HEALTHY"]
    server.shutdown()
    server.server_close()
    deadline = time.monotonic() + 30
    while _healthy(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _healthy(client) == []
    assert _healthy(client, "ALL") == ["web-1:UNHEALTHY"]
    assert _healthy(client, "HEALTHY_OR_ELSE_ALL") == ["web-1:UNHEALTHY"]
    # The Lambda API still answers on the same port.
    lam = boto3.client(
        "lambda",
        endpoint_url=node.url,
        region_name="us-east-1",
        aws_access_key_id="fogbank",
        aws_secret_access_key="fogbank",
    )
    assert lam.list_functions()["Functions"] == []


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Shop:
    Type: AWS::ServiceDiscovery::PrivateDnsNamespace
    Properties: {Name: shop.local, Vpc: vpc-1}
  Db:
    Type: AWS::ServiceDiscovery::Service
    Properties:
      Name: db
      NamespaceId: !Ref Shop
      DnsConfig: {DnsRecords: [{Type: A, TTL: 30}, {Type: SRV, TTL: 30}]}
  Primary:
    Type: AWS::ServiceDiscovery::Instance
    Properties:
      ServiceId: !Ref Db
      InstanceId: db-primary
      InstanceAttributes: {AWS_INSTANCE_IPV4: 10.0.0.9, AWS_INSTANCE_PORT: 5432, role: primary}
"""


def test_a_template_instance_is_served_by_dns_and_the_api(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    config = NodeConfig(port=0, control_port=0, state_dir=tmp_path / "state", dns_port=0)
    running = NodeThread(config, load_template(template)).start()
    try:
        assert running.node is not None
        assert running.node.dns is not None
        port = running.node.dns.port
        query = dns.message.make_query("db.shop.local", dns.rdatatype.A)
        answer = dns.query.udp(query, "127.0.0.1", timeout=5, port=port)
        assert [(rr.name.to_text(), rr.ttl, [r.address for r in rr]) for rr in answer.answer] == [
            ("db.shop.local.", 30, ["10.0.0.9"])
        ]
        srv = dns.query.udp(
            dns.message.make_query("db.shop.local", dns.rdatatype.SRV), "127.0.0.1", port=port
        )
        assert [(r.port, r.target.to_text()) for rr in srv.answer for r in rr] == [
            (5432, "db-primary.db.shop.local.")
        ]
        found = _client(running).discover_instances(NamespaceName="shop.local", ServiceName="db")
        assert [(i["InstanceId"], i["Attributes"]) for i in found["Instances"]] == [
            (
                "db-primary",
                {"AWS_INSTANCE_IPV4": "10.0.0.9", "AWS_INSTANCE_PORT": "5432", "role": "primary"},
            )
        ]
    finally:
        running.stop()
