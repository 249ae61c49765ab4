"""The Cloud Map API driven by boto3: namespaces, services, service attributes, tags, and the
protocol's edges (unknown operations, malformed bodies) seen through raw HTTP."""

from __future__ import annotations

import datetime
import re
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank.discovery import is_cloud_map
from fogbank.discovery._cloudmap import OPERATIONS
from tests.discovery.conftest import ACCOUNT, ApiThread

T = "Route53AutoNaming_v20170314."


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def http_namespace(sd: ServiceDiscoveryClient, name: str = "web", **kwargs: Any) -> str:
    operation_id = sd.create_http_namespace(Name=name, **kwargs)["OperationId"]
    return sd.get_operation(OperationId=operation_id)["Operation"]["Targets"]["NAMESPACE"]


def dns_namespace(sd: ServiceDiscoveryClient, name: str = "shop.local") -> str:
    operation_id = sd.create_private_dns_namespace(Name=name, Vpc="vpc-1")["OperationId"]
    return sd.get_operation(OperationId=operation_id)["Operation"]["Targets"]["NAMESPACE"]


def test_create_and_get_an_http_namespace(sd: ServiceDiscoveryClient) -> None:
    operation_id = sd.create_http_namespace(
        Name="web", Description="the web tier", CreatorRequestId="req-1"
    )["OperationId"]
    operation = sd.get_operation(OperationId=operation_id)["Operation"]
    assert (operation["Id"], operation["Type"], operation["Status"]) == (
        operation_id,
        "CREATE_NAMESPACE",
        "SUCCESS",
    )
    assert operation["OwnerAccount"] == ACCOUNT
    assert isinstance(operation["CreateDate"], datetime.datetime)
    namespace_id = operation["Targets"]["NAMESPACE"]
    assert re.fullmatch(r"ns-[a-z0-9]{16}", namespace_id)
    namespace = sd.get_namespace(Id=namespace_id)["Namespace"]
    created = namespace.pop("CreateDate")
    assert abs(created.timestamp() - operation["CreateDate"].timestamp()) < 1
    assert namespace == {
        "Id": namespace_id,
        "Arn": f"arn:aws:servicediscovery:us-east-1:{ACCOUNT}:namespace/{namespace_id}",
        "ResourceOwner": ACCOUNT,
        "Name": "web",
        "Type": "HTTP",
        "Description": "the web tier",
        "ServiceCount": 0,
        "Properties": {"DnsProperties": {}, "HttpProperties": {"HttpName": "web"}},
        "CreatorRequestId": "req-1",
    }
    # A retry with the same creator request id is the same operation.
    again = sd.create_http_namespace(Name="web", CreatorRequestId="req-1")["OperationId"]
    assert again == operation_id


def test_dns_namespaces_have_dns_properties(sd: ServiceDiscoveryClient) -> None:
    sd.create_private_dns_namespace(
        Name="shop.local", Vpc="vpc-1", Properties={"DnsProperties": {"SOA": {"TTL": 60}}}
    )
    sd.create_public_dns_namespace(Name="example.com")
    private, public = sd.list_namespaces()["Namespaces"]
    zone = private["Properties"]["DnsProperties"].pop("HostedZoneId")
    assert re.fullmatch(r"Z[0-9A-F]{20}", zone)
    assert private["Properties"] == {
        "DnsProperties": {"SOA": {"TTL": 60}},
        "HttpProperties": {"HttpName": "shop.local"},
    }
    assert (private["Type"], public["Type"]) == ("DNS_PRIVATE", "DNS_PUBLIC")
    assert public["Properties"]["DnsProperties"]["SOA"] == {"TTL": 15}
    assert "CreatorRequestId" not in private


def test_namespace_errors(sd: ServiceDiscoveryClient) -> None:
    namespace_id = http_namespace(sd, "web", CreatorRequestId="first")
    with pytest.raises(ClientError) as exc:
        sd.create_http_namespace(Name="web")
    assert error_of(exc) == ("NamespaceAlreadyExists", 400)
    assert exc.value.response["NamespaceId"] == namespace_id  # type: ignore[typeddict-item]
    assert exc.value.response["CreatorRequestId"] == "first"  # type: ignore[typeddict-item]
    with pytest.raises(sd.exceptions.NamespaceNotFound) as missing:
        sd.get_namespace(Id="ns-missing")
    assert error_of(missing) == ("NamespaceNotFound", 404)
    with pytest.raises(ClientError) as exc:
        sd.create_http_namespace(Name="has space")
    assert error_of(exc) == ("InvalidInput", 400)
    with pytest.raises(ClientError) as exc:
        sd.create_private_dns_namespace(Name="x" * 254, Vpc="vpc-1")
    assert error_of(exc) == ("InvalidInput", 400)


def test_list_namespaces_filters_and_pages(sd: ServiceDiscoveryClient) -> None:
    for name in ("web-a", "web-b", "api"):
        http_namespace(sd, name)
    dns_namespace(sd, "web.local")

    def names(**kwargs: Any) -> list[str]:
        return [ns["Name"] for ns in sd.list_namespaces(**kwargs)["Namespaces"]]

    assert names() == ["web-a", "web-b", "api", "web.local"]
    assert names(Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"]}]) == ["web.local"]
    in_types = [{"Name": "TYPE", "Values": ["HTTP", "DNS_PUBLIC"], "Condition": "IN"}]
    assert names(Filters=in_types) == ["web-a", "web-b", "api"]
    begins = [{"Name": "NAME", "Values": ["web"], "Condition": "BEGINS_WITH"}]
    assert names(Filters=begins) == ["web-a", "web-b", "web.local"]
    assert names(Filters=[{"Name": "HTTP_NAME", "Values": ["api"]}]) == ["api"]
    first = sd.list_namespaces(MaxResults=3)
    assert [ns["Name"] for ns in first["Namespaces"]] == ["web-a", "web-b", "api"]
    rest = sd.list_namespaces(MaxResults=3, NextToken=first["NextToken"])
    assert [ns["Name"] for ns in rest["Namespaces"]] == ["web.local"]
    assert "NextToken" not in rest
    pages = sd.get_paginator("list_namespaces").paginate(PaginationConfig={"PageSize": 1})
    assert [len(page["Namespaces"]) for page in pages] == [1, 1, 1, 1]
    for bad in (
        {"NextToken": "garbage"},
        {"Filters": [{"Name": "TYPE", "Values": ["HTTP"], "Condition": "BETWEEN"}]},
        {"Filters": [{"Name": "TYPE", "Values": ["HTTP", "DNS_PUBLIC"]}]},
    ):
        with pytest.raises(ClientError) as exc:
            sd.list_namespaces(**bad)
        assert error_of(exc) == ("InvalidInput", 400)


def test_update_and_delete_namespaces(sd: ServiceDiscoveryClient) -> None:
    web = http_namespace(sd, "web")
    shop = dns_namespace(sd, "shop.local")
    public_op = sd.create_public_dns_namespace(Name="example.com")["OperationId"]
    public = sd.get_operation(OperationId=public_op)["Operation"]["Targets"]["NAMESPACE"]
    operation_id = sd.update_http_namespace(Id=web, Namespace={"Description": "new"})["OperationId"]
    assert sd.get_operation(OperationId=operation_id)["Operation"]["Type"] == "UPDATE_NAMESPACE"
    assert sd.get_namespace(Id=web)["Namespace"]["Description"] == "new"
    change = {"Properties": {"DnsProperties": {"SOA": {"TTL": 99}}}}
    sd.update_private_dns_namespace(Id=shop, Namespace=change)  # type: ignore[arg-type]
    sd.update_public_dns_namespace(Id=public, Namespace={"Description": "pub"})
    shop_ns = sd.get_namespace(Id=shop)["Namespace"]
    assert shop_ns["Properties"]["DnsProperties"]["SOA"] == {"TTL": 99}
    assert sd.get_namespace(Id=public)["Namespace"]["Description"] == "pub"
    with pytest.raises(ClientError) as exc:
        sd.update_http_namespace(Id=shop, Namespace={"Description": "x"})
    assert error_of(exc) == ("InvalidInput", 400)
    with pytest.raises(ClientError) as exc:
        sd.update_http_namespace(Id="ns-missing", Namespace={"Description": "x"})
    assert error_of(exc) == ("NamespaceNotFound", 404)
    service_id = sd.create_service(Name="orders", NamespaceId=web)["Service"]["Id"]
    with pytest.raises(ClientError) as exc:
        sd.delete_namespace(Id=web)
    assert error_of(exc) == ("ResourceInUse", 409)
    sd.delete_service(Id=service_id)
    operation_id = sd.delete_namespace(Id=web)["OperationId"]
    assert sd.get_operation(OperationId=operation_id)["Operation"]["Type"] == "DELETE_NAMESPACE"
    with pytest.raises(ClientError) as exc:
        sd.delete_namespace(Id=web)
    assert error_of(exc) == ("NamespaceNotFound", 404)


def test_create_get_and_list_services(sd: ServiceDiscoveryClient) -> None:
    shop = dns_namespace(sd)
    web = http_namespace(sd)
    created = sd.create_service(
        Name="orders",
        NamespaceId=shop,
        Description="orders",
        CreatorRequestId="svc-1",
        DnsConfig={
            "RoutingPolicy": "WEIGHTED",
            "DnsRecords": [{"Type": "A", "TTL": 30}, {"Type": "SRV", "TTL": 20}],
        },
        HealthCheckCustomConfig={"FailureThreshold": 2},
    )["Service"]
    service_id = created["Id"]
    assert re.fullmatch(r"srv-[a-z0-9]{16}", service_id)
    got = sd.get_service(Id=service_id)["Service"]
    assert got.pop("CreateDate") == created.pop("CreateDate")
    assert (
        got
        == created
        == {
            "Id": service_id,
            "Arn": f"arn:aws:servicediscovery:us-east-1:{ACCOUNT}:service/{service_id}",
            "ResourceOwner": ACCOUNT,
            "Name": "orders",
            "NamespaceId": shop,
            "Description": "orders",
            "InstanceCount": 0,
            "Type": "DNS_HTTP",
            "DnsConfig": {
                "NamespaceId": shop,
                "RoutingPolicy": "WEIGHTED",
                "DnsRecords": [{"Type": "A", "TTL": 30}, {"Type": "SRV", "TTL": 20}],
            },
            "HealthCheckCustomConfig": {"FailureThreshold": 2},
            "CreatorRequestId": "svc-1",
            "CreatedByAccount": ACCOUNT,
        }
    )
    probed = sd.create_service(
        Name="users",
        NamespaceId=web,
        HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 3},
    )["Service"]
    assert (probed["Type"], probed["HealthCheckConfig"]) == (
        "HTTP",
        {"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 3},
    )
    # The deprecated DnsConfig.NamespaceId names the namespace too; Type HTTP: no DNS records.
    legacy = sd.create_service(
        Name="legacy", DnsConfig={"NamespaceId": shop, "DnsRecords": [{"Type": "A", "TTL": 5}]}
    )["Service"]
    assert legacy["NamespaceId"] == shop
    assert sd.create_service(Name="api", NamespaceId=shop, Type="HTTP")["Service"]["Type"] == "HTTP"
    assert sd.get_namespace(Id=shop)["Namespace"]["ServiceCount"] == 3
    listed = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [shop]}])["Services"]
    assert [s["Name"] for s in listed] == ["orders", "legacy", "api"]
    assert "NamespaceId" not in listed[0]  # a ServiceSummary
    assert [s["Name"] for s in sd.list_services()["Services"]] == [
        "orders",
        "users",
        "legacy",
        "api",
    ]
    pages = sd.get_paginator("list_services").paginate(PaginationConfig={"PageSize": 3})
    assert [len(page["Services"]) for page in pages] == [3, 1]


def test_service_errors(sd: ServiceDiscoveryClient) -> None:
    shop = dns_namespace(sd)
    web = http_namespace(sd)
    first = sd.create_service(Name="orders", NamespaceId=shop, CreatorRequestId="c")["Service"]
    with pytest.raises(ClientError) as exc:
        sd.create_service(Name="orders", NamespaceId=shop)
    assert error_of(exc) == ("ServiceAlreadyExists", 400)
    response: Any = exc.value.response
    assert (response["ServiceId"], response["ServiceArn"]) == (first["Id"], first["Arn"])
    assert response["CreatorRequestId"] == "c"
    cases: list[tuple[dict[str, Any], tuple[str, int]]] = [
        ({"Name": "x", "NamespaceId": "ns-missing"}, ("NamespaceNotFound", 404)),
        ({"Name": "x"}, ("InvalidInput", 400)),
        (
            {
                "Name": "x",
                "NamespaceId": web,
                "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}]},
            },
            ("InvalidInput", 400),
        ),
        (
            {
                "Name": "x",
                "NamespaceId": web,
                "HealthCheckConfig": {"Type": "HTTP"},
                "HealthCheckCustomConfig": {},
            },
            ("InvalidInput", 400),
        ),
        ({"Name": "bad name", "NamespaceId": web}, ("InvalidInput", 400)),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            sd.create_service(**kwargs)
        assert error_of(exc) == code, kwargs
    for call in (sd.get_service, sd.delete_service):
        with pytest.raises(ClientError) as exc:
            call(Id="srv-missing")
        assert error_of(exc) == ("ServiceNotFound", 404)


def test_update_and_delete_services(sd: ServiceDiscoveryClient, api: ApiThread) -> None:
    shop = dns_namespace(sd)
    service_id = sd.create_service(
        Name="orders",
        NamespaceId=shop,
        DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 30}, {"Type": "SRV", "TTL": 20}]},
        HealthCheckConfig={"Type": "TCP"},
    )["Service"]["Id"]
    operation_id = sd.update_service(
        Id=service_id,
        Service={"Description": "changed", "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 60}]}},
    )["OperationId"]
    operation = sd.get_operation(OperationId=operation_id)["Operation"]
    assert (operation["Type"], operation["Targets"]) == ("UPDATE_SERVICE", {"SERVICE": service_id})
    service = sd.get_service(Id=service_id)["Service"]
    assert service["Description"] == "changed"
    assert service["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 60}]
    assert "HealthCheckConfig" not in service  # left out of the change: removed, as AWS does
    with pytest.raises(ClientError) as exc:
        sd.update_service(
            Id=service_id, Service={"DnsConfig": {"DnsRecords": [{"Type": "AAAA", "TTL": 5}]}}
        )
    assert error_of(exc) == ("InvalidInput", 400)
    sd.register_instance(
        ServiceId=service_id, InstanceId="i-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"}
    )
    with pytest.raises(ClientError) as exc:
        sd.delete_service(Id=service_id)
    assert error_of(exc) == ("ResourceInUse", 409)
    sd.deregister_instance(ServiceId=service_id, InstanceId="i-1")
    assert sd.delete_service(Id=service_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert api.run(lambda: api.registry.resolve_name("orders.shop.local")) is None


def test_service_attributes(sd: ServiceDiscoveryClient) -> None:
    service = sd.create_service(Name="orders", NamespaceId=http_namespace(sd))["Service"]
    sd.update_service_attributes(ServiceId=service["Id"], Attributes={"a": "1", "b": "2"})
    sd.delete_service_attributes(ServiceId=service["Id"], Attributes=["a"])
    assert sd.get_service_attributes(ServiceId=service["Id"])["ServiceAttributes"] == {
        "ServiceArn": service["Arn"],
        "ResourceOwner": ACCOUNT,
        "Attributes": {"b": "2"},
    }
    with pytest.raises(ClientError) as exc:
        sd.update_service_attributes(
            ServiceId=service["Id"], Attributes={f"k{n}": "v" for n in range(30)}
        )
    assert error_of(exc) == ("ServiceAttributesLimitExceededException", 400)
    with pytest.raises(ClientError) as exc:
        sd.get_service_attributes(ServiceId="srv-missing")
    assert error_of(exc) == ("ServiceNotFound", 404)


def test_tags(sd: ServiceDiscoveryClient) -> None:
    namespace_id = http_namespace(sd, Tags=[{"Key": "team", "Value": "web"}])
    arn = sd.get_namespace(Id=namespace_id)["Namespace"]["Arn"]
    service = sd.create_service(
        Name="orders", NamespaceId=namespace_id, Tags=[{"Key": "tier", "Value": "1"}]
    )["Service"]
    sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "cost", "Value": "a"}])
    assert sd.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "team", "Value": "web"},
        {"Key": "cost", "Value": "a"},
    ]
    sd.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert sd.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "cost", "Value": "a"}]
    assert sd.list_tags_for_resource(ResourceARN=service["Arn"])["Tags"] == [
        {"Key": "tier", "Value": "1"}
    ]
    missing = arn.replace(namespace_id, "ns-missing")
    for call in (
        lambda: sd.list_tags_for_resource(ResourceARN=missing),
        lambda: sd.tag_resource(ResourceARN=missing, Tags=[]),
        lambda: sd.untag_resource(ResourceARN=missing, TagKeys=[]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("ResourceNotFoundException", 404)
    many = [{"Key": f"k{n}", "Value": "v"} for n in range(200)]
    with pytest.raises(ClientError) as exc:
        sd.tag_resource(ResourceARN=arn, Tags=many)  # type: ignore[arg-type]
    assert error_of(exc) == ("TooManyTagsException", 400)
    assert exc.value.response["ResourceName"] == arn  # type: ignore[typeddict-item]


def raw(api: ApiThread, target: str | None, body: bytes, method: str = "POST") -> httpx.Response:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    return httpx.request(method, api.url + "/", headers=headers, content=body)


@pytest.mark.parametrize(
    ("target", "body", "status", "code"),
    [
        (T + "NoSuchThing", b"{}", 400, "UnknownOperationException"),
        ("Other_2020.ListNamespaces", b"{}", 400, "UnknownOperationException"),
        (None, b"{}", 400, "UnknownOperationException"),
        (T + "ListNamespaces", b"{not json", 400, "SerializationException"),
        (T + "ListNamespaces", b"[1, 2]", 400, "SerializationException"),
        (T + "GetNamespace", b'{"Id": 7}', 400, "SerializationException"),
        (T + "ListNamespaces", b'{"MaxResults": "ten"}', 400, "SerializationException"),
        (T + "ListNamespaces", b'{"MaxResults": 101}', 400, "InvalidInput"),
        (T + "ListNamespaces", b'{"Filters": {"Name": "TYPE"}}', 400, "SerializationException"),
        (T + "RegisterInstance", b'{"ServiceId": "s", "InstanceId": "i"}', 400, "InvalidInput"),
        (T + "GetNamespace", b"{}", 400, "InvalidInput"),
        (T + "GetNamespace", b'{"Id": "' + b"x" * 300 + b'"}', 400, "InvalidInput"),
    ],
)
def test_protocol_errors(
    api: ApiThread, target: str | None, body: bytes, status: int, code: str
) -> None:
    response = raw(api, target, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-requestid"]
    error = response.json()
    assert error["__type"] == code
    assert "Traceback" not in error["Message"]


def test_other_methods_and_oversized_bodies(api: ApiThread) -> None:
    response = raw(api, T + "ListNamespaces", b"", method="GET")
    assert (response.status_code, response.json()["__type"]) == (400, "UnknownOperationException")
    huge = b'{"Name": "' + b"x" * (1024 * 1024) + b'"}'
    response = raw(api, T + "CreateHttpNamespace", huge)
    assert (response.status_code, response.json()["__type"]) == (400, "SerializationException")
    # An empty body is an empty request.
    assert raw(api, T + "ListNamespaces", b"").json() == {"Namespaces": []}


def test_is_cloud_map_routes_by_target() -> None:
    def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
        return {"type": "http", "headers": list(headers)}

    assert is_cloud_map(scope((b"x-amz-target", b"Route53AutoNaming_v20170314.ListServices")))
    assert not is_cloud_map(scope((b"x-amz-target", b"AWSLambda.Invoke")))
    assert not is_cloud_map(scope((b"content-type", b"application/x-amz-json-1.1")))
    assert not is_cloud_map({"type": "lifespan"})


def test_every_operation_of_botocores_model_is_served(sd: ServiceDiscoveryClient) -> None:
    assert sorted(OPERATIONS) == sorted(sd.meta.service_model.operation_names)
