"""The node `bench/discovery.py` measures: the template it serves, the echo service's code, and
the clients that talk to the node (boto3 `servicediscovery`, DNS over UDP). Imports its siblings
`_peers` and `gateway` through the path `bench/discovery.py` sets.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _peers
import boto3
import dns.message
import dns.query
from _peers import HOST, PeerError, Running, Server, free_port
from botocore.config import Config
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

import gateway

PARTS = ("discover", "death", "gateway", "cpu")
NAMESPACE, ITEMS, ECHO = "bench.local", "items", "echo"
BOTO3_ROW = "DiscoverInstances, boto3"
ECHO_COUNT = 3
INTERVAL_S, TIMEOUT_S = 1.0, 0.5
"""The echo service's health check; a dead instance should be gone within their sum."""

# The hello world of bench/gateway.py's baseline, plus /pid, which tells the bench whom to kill,
# and `?work=N`, which spends N microseconds of CPU first (a service that does something).
ECHO_APP = (
    _peers.ASGI_APP
    + """
import os
import time

_hello = app
_PID = str(os.getpid()).encode()


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/pid":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": _PID})
        return
    if scope["type"] == "http" and scope["query_string"].startswith(b"work="):
        until = time.perf_counter() + int(scope["query_string"][5:]) / 1e6
        while time.perf_counter() < until:
            pass
    await _hello(scope, receive, send)
"""
)
WORK_US = 1000
"""The CPU an echo request spends in the second pair of gateway rows."""

CANNED_APP = """\
from pathlib import Path

BODY = Path("canned.json").read_bytes()
HEADERS = [(b"content-type", b"application/x-amz-json-1.1"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""

ITEMS_TEMPLATE = f"""\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  BenchNamespace:
    Type: AWS::ServiceDiscovery::PrivateDnsNamespace
    Properties: {{Name: {NAMESPACE}, Vpc: vpc-local}}
  ItemsDiscovery:
    Type: AWS::ServiceDiscovery::Service
    Properties:
      Name: {ITEMS}
      NamespaceId: !Ref BenchNamespace
      DnsConfig:
        DnsRecords: [{{Type: A, TTL: 10}}, {{Type: SRV, TTL: 10}}]
      HealthCheckCustomConfig: {{FailureThreshold: 1}}
"""

ECHO_TEMPLATE = f"""\
  EchoDiscovery:
    Type: AWS::ServiceDiscovery::Service
    Properties:
      Name: {ECHO}
      NamespaceId: !Ref BenchNamespace
      DnsConfig:
        DnsRecords: [{{Type: A, TTL: 1}}, {{Type: SRV, TTL: 1}}]
      HealthCheckCustomConfig: {{FailureThreshold: 1}}
  EchoService:
    Type: Fogbank::Service
    Properties:
      ServiceName: {ECHO}
      WorkingDirectory: echo
      Command: [{sys.executable}, -m, uvicorn, "app:app", --host, {HOST}, --port, "${{PORT}}",
                --log-level, warning, --no-access-log]
      DesiredCount: {ECHO_COUNT}
      HealthCheck: {{Path: /health, Interval: {INTERVAL_S}, Timeout: {TIMEOUT_S}, Retries: 3}}
      ServiceRegistries:
        - RegistryArn: !GetAtt EchoDiscovery.Arn
  BenchApi:
    Type: AWS::Serverless::HttpApi
  EchoLink:
    Type: AWS::ApiGatewayV2::VpcLink
    Properties: {{Name: echo-link, SubnetIds: [subnet-local]}}
  EchoIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref BenchApi
      IntegrationType: HTTP_PROXY
      IntegrationMethod: ANY
      ConnectionType: VPC_LINK
      ConnectionId: !Ref EchoLink
      IntegrationUri: !GetAtt EchoDiscovery.Arn
      PayloadFormatVersion: "1.0"
  EchoRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref BenchApi
      RouteKey: GET /echo
      Target: !Sub integrations/${{EchoIntegration}}
"""


def cloud_map_client(port: int) -> ServiceDiscoveryClient:
    return boto3.client(
        "servicediscovery",
        endpoint_url=f"http://{HOST}:{port}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        # DiscoverInstances would otherwise go to http://data-127.0.0.1:…/
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


class Node:
    """The `fogbank up` under test, and the clients that talk to it."""

    def __init__(self, work: Path, parts: list[str]) -> None:
        text = ITEMS_TEMPLATE + (ECHO_TEMPLATE if {"death", "gateway", "cpu"} & set(parts) else "")
        (work / "template.yaml").write_text(text)
        (work / "echo").mkdir()
        (work / "echo" / "app.py").write_text(ECHO_APP)
        self.port, self.control, self.dns_port = free_port(), free_port(), free_port()
        exe = str(Path(sys.executable).with_name("fogbank"))
        argv = [*gateway.on_cores(0), exe, "up", "-t", str(work / "template.yaml")]
        argv += ["--port", str(self.port), "--control-port", str(self.control)]
        argv += ["--dns-port", str(self.dns_port), "--state-dir", str(work / "state")]
        argv += ["--no-reload"]
        self.running = Running(Server("fogbank", argv, work, (), self.control), work / "node.log")
        self.cloudmap = cloud_map_client(self.control)
        self.work = work

    def healthy(self, service: str) -> list[dict[str, Any]]:
        found = self.cloudmap.discover_instances(
            NamespaceName=NAMESPACE, ServiceName=service, HealthStatus="HEALTHY"
        )
        return [dict(i) for i in found["Instances"]]

    def srv_targets(self, service: str) -> set[tuple[str, int]]:
        query = dns.message.make_query(f"{service}.{NAMESPACE}", "SRV", use_edns=0, payload=1232)
        reply = dns.query.udp(query, HOST, timeout=2, port=self.dns_port)
        return {(r.target.to_text(), r.port) for rrset in reply.answer for r in rrset}

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float = 60.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if ready():
                return time.monotonic() - started
            time.sleep(0.05)
        raise PeerError(f"{what}: not after {timeout:.0f} s; see {self.running.log}")
