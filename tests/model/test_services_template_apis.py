"""HTTP API private integrations through Cloud Map, and REST routes to `service.namespace` hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fogbank.model import (
    ANY,
    ApiKind,
    Integration,
    IntegrationType,
    discovery_id,
    load_template,
)
from tests.model.test_apis import rest_method
from tests.model.test_services_template import (
    CLOUD_MAP,
    SHOP,
    TEMPLATES,
    load_error,
    write,
)

CATALOG = discovery_id("srv", "Catalog")
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8e"


def private(service_id: str, **fields: Any) -> Integration:
    """An HTTP API private integration to a Cloud Map service (30 s limit unless given)."""
    return Integration(
        IntegrationType.HTTP_PROXY, cloud_map_service=service_id, **{"timeout_ms": 30_000, **fields}
    )


def test_the_services_fixture_has_a_private_integration() -> None:
    app = load_template(TEMPLATES / "services" / "template.yaml")
    (http,) = (api for api in app.apis.values() if api.kind is ApiKind.HTTP)
    routes = {route.route_key: route.integration for route in http.routes}
    catalog = private(discovery_id("srv", "CatalogDiscovery"))
    assert routes == {
        "POST /orders": Integration(
            IntegrationType.AWS_PROXY,
            function_name="OrdersFunction",
            payload_format_version="2.0",
            timeout_ms=30_000,
        ),
        "GET /items": catalog,
        "GET /items/{proxy+}": catalog,
    }
    assert list(http.stages) == ["$default"]
    assert app.warnings == ()


HTTP_API = """\
Api:
  Type: AWS::Serverless::HttpApi
  Properties:
    DefinitionBody:
      openapi: '3.0.1'
      info: {title: shop, version: '1'}
      paths:
        /items/{proxy+}:
          get:
            x-amazon-apigateway-integration:
              type: http_proxy
              httpMethod: GET
              connectionType: VPC_LINK
              connectionId: link-1
              uri: !GetAtt Catalog.Arn
              payloadFormatVersion: '1.0'
              timeoutInMillis: 5000
        /legacy:
          x-amazon-apigateway-any-method:
            x-amazon-apigateway-integration:
              type: http_proxy
              connectionType: VPC_LINK
              uri: {uri}
"""


def test_openapi_private_integrations(tmp_path: Path) -> None:
    app = load_template(write(tmp_path, SHOP, HTTP_API.replace("{uri}", LISTENER)))
    (api,) = app.apis.values()
    assert [(route.route_key, route.integration) for route in api.routes] == [
        ("GET /items/{proxy+}", private(CATALOG, http_method="GET", timeout_ms=5000)),
    ]
    assert app.warnings == (
        "Api: not served by fogbank (VPC link integration to a load balancer): ANY /legacy",
    )


def integration(uri: str, kind: str = "HTTP_PROXY") -> str:
    """An HTTP API `Api` with one VPC_LINK integration `Integ` of type `kind` to `uri`."""
    return f"""\
Api:
  Type: AWS::ApiGatewayV2::Api
  Properties: {{Name: api, ProtocolType: HTTP}}
Integ:
  Type: AWS::ApiGatewayV2::Integration
  Properties:
    ApiId: !Ref Api
    IntegrationType: {kind}
    ConnectionType: VPC_LINK
    IntegrationUri: {uri}
"""


OTHER = f"{CLOUD_MAP}:service/srv-0123456789abcdef"
NEEDS_ARN = "a VPC_LINK integration needs a Cloud Map service ARN (!GetAtt Service.Arn)"


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        (
            integration(OTHER),
            "Integ: property IntegrationUri",
            f"{OTHER} names no discovery service in this template",
        ),
        (
            integration("http://catalog.shop.local/"),
            "Integ: property IntegrationUri",
            f"{NEEDS_ARN}, got http://catalog.shop.local/",
        ),
        (
            integration("!GetAtt Catalog.Arn", kind="AWS_PROXY"),
            "Integ: property IntegrationType",
            "a VPC_LINK integration must be HTTP_PROXY, not AWS_PROXY",
        ),
        (
            HTTP_API.replace("{uri}", "!Ref Catalog"),
            "Api: property DefinitionBody.paths./legacy.x-amazon-apigateway-any-method.x-amazon-apigateway-integration.uri",
            f"{NEEDS_ARN}, got {CATALOG}",
        ),
    ],
)
def test_private_integration_errors(
    tmp_path: Path, resources: str, where: str, message: str
) -> None:
    path = write(tmp_path, SHOP, resources)
    assert load_error(path) == f"{path}: resource {where}: {message}"


def test_rest_http_proxy_to_a_discovered_name_needs_no_service_in_the_template(
    tmp_path: Path,
) -> None:
    # The gateway resolves `service.namespace` hosts per request, from the registry.
    uri = "http://orders.elsewhere.local:8080/"
    app = load_template(write(tmp_path, rest_method(f"{{Type: HTTP_PROXY, Uri: '{uri}'}}")))
    (api,) = app.apis.values()
    assert [route.integration for route in api.routes] == [
        Integration(IntegrationType.HTTP_PROXY, uri=uri, http_method=ANY)
    ]
