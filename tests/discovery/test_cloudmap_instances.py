"""The Cloud Map API driven by boto3: instances, discovery, health, operations, the `data-`
host prefix, and the registry's state across a restart."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank.discovery import HealthStatus, Owner
from tests.discovery.conftest import ACCOUNT, ApiThread
from tests.discovery.test_cloudmap import dns_namespace, error_of, http_namespace

ADDR = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "8080"}


def orders(sd: ServiceDiscoveryClient, *, custom: bool = True) -> str:
    """`orders.shop.local`: A and SRV records, custom health unless `custom` is False."""
    extra: dict[str, Any] = {"HealthCheckCustomConfig": {}} if custom else {}
    return sd.create_service(
        Name="orders",
        NamespaceId=dns_namespace(sd),
        DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 10}]},
        **extra,
    )["Service"]["Id"]


def addr(n: int, **more: str) -> dict[str, str]:
    return {"AWS_INSTANCE_IPV4": f"10.0.0.{n}", "AWS_INSTANCE_PORT": "8080", **more}


def test_register_get_list_deregister(sd: ServiceDiscoveryClient) -> None:
    service_id = orders(sd)
    operation_id = sd.register_instance(
        ServiceId=service_id, InstanceId="i-1", Attributes=ADDR, CreatorRequestId="req-1"
    )["OperationId"]
    operation = sd.get_operation(OperationId=operation_id)["Operation"]
    assert (operation["Type"], operation["Status"]) == ("REGISTER_INSTANCE", "SUCCESS")
    assert operation["Targets"] == {"INSTANCE": "i-1", "SERVICE": service_id}
    got = sd.get_instance(ServiceId=service_id, InstanceId="i-1")
    assert got["ResourceOwner"] == ACCOUNT
    assert got["Instance"] == {
        "Id": "i-1",
        "CreatorRequestId": "req-1",
        "Attributes": ADDR,
        "CreatedByAccount": ACCOUNT,
    }
    # An upsert: the attributes are replaced.
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=addr(9, color="red"))
    for n in (2, 3):
        sd.register_instance(ServiceId=service_id, InstanceId=f"i-{n}", Attributes=addr(n))
    listed = sd.list_instances(ServiceId=service_id)
    assert listed["Instances"][0] == {
        "Id": "i-1",
        "Attributes": addr(9, color="red"),
        "CreatedByAccount": ACCOUNT,
    }
    assert [i["Id"] for i in listed["Instances"]] == ["i-1", "i-2", "i-3"]
    first = sd.list_instances(ServiceId=service_id, MaxResults=2)
    rest = sd.list_instances(ServiceId=service_id, MaxResults=2, NextToken=first["NextToken"])
    assert [i["Id"] for i in first["Instances"] + rest["Instances"]] == ["i-1", "i-2", "i-3"]
    assert sd.get_service(Id=service_id)["Service"]["InstanceCount"] == 3
    operation_id = sd.deregister_instance(ServiceId=service_id, InstanceId="i-2")["OperationId"]
    operation = sd.get_operation(OperationId=operation_id)["Operation"]
    assert (operation["Type"], operation["Status"]) == ("DEREGISTER_INSTANCE", "SUCCESS")
    assert [i["Id"] for i in sd.list_instances(ServiceId=service_id)["Instances"]] == ["i-1", "i-3"]


def test_instance_errors(sd: ServiceDiscoveryClient, api: ApiThread) -> None:
    service_id = orders(sd)
    cases: list[tuple[Any, dict[str, Any], tuple[str, int]]] = [
        (
            sd.register_instance,
            {"ServiceId": "srv-x", "InstanceId": "i", "Attributes": ADDR},
            ("ServiceNotFound", 404),
        ),
        (
            sd.get_instance,
            {"ServiceId": service_id, "InstanceId": "nope"},
            ("InstanceNotFound", 404),
        ),
        (
            sd.deregister_instance,
            {"ServiceId": service_id, "InstanceId": "nope"},
            ("InstanceNotFound", 404),
        ),
        (sd.list_instances, {"ServiceId": "srv-x"}, ("ServiceNotFound", 404)),
        (sd.get_operation, {"OperationId": "nope"}, ("OperationNotFound", 404)),
        (
            sd.register_instance,
            {
                "ServiceId": service_id,
                "InstanceId": "i",
                "Attributes": {"AWS_INSTANCE_IPV4": "1.2.3"},
            },
            ("InvalidInput", 400),
        ),
        (
            sd.register_instance,
            {"ServiceId": service_id, "InstanceId": "i", "Attributes": {"AWS_INSTANCE_PORT": "80"}},
            ("InvalidInput", 400),
        ),
        (
            sd.register_instance,
            {"ServiceId": service_id, "InstanceId": "bad id", "Attributes": ADDR},
            ("InvalidInput", 400),
        ),
    ]
    for call, kwargs, expected in cases:
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error_of(exc) == expected, kwargs
    # Instances the supervisor runs are not the API's to change.
    api.run(lambda: api.registry.register_instance(service_id, "s-1", ADDR, owner=Owner.SUPERVISOR))
    for call, kwargs in (
        (sd.register_instance, {"ServiceId": service_id, "InstanceId": "s-1", "Attributes": ADDR}),
        (sd.deregister_instance, {"ServiceId": service_id, "InstanceId": "s-1"}),
    ):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error_of(exc) == ("ResourceInUse", 409)


def five(sd: ServiceDiscoveryClient) -> str:
    service_id = orders(sd)
    for n, (color, health) in enumerate(
        [("red", "HEALTHY"), ("red", "UNHEALTHY"), ("blue", "HEALTHY"), ("blue", "UNHEALTHY")],
        start=1,
    ):
        sd.register_instance(
            ServiceId=service_id, InstanceId=f"i-{n}", Attributes=addr(n, color=color)
        )
        sd.update_instance_custom_health_status(
            ServiceId=service_id,
            InstanceId=f"i-{n}",
            Status=health,  # type: ignore[arg-type]
        )
    sd.register_instance(
        ServiceId=service_id,
        InstanceId="i-5",
        Attributes=addr(5, color="green", AWS_INIT_HEALTH_STATUS="UNHEALTHY"),
    )
    return service_id


def discovered(sd: ServiceDiscoveryClient, **kwargs: Any) -> list[str]:
    found = sd.discover_instances(NamespaceName="shop.local", ServiceName="orders", **kwargs)
    return sorted(i["InstanceId"] for i in found["Instances"])


def test_discover_instances(sd: ServiceDiscoveryClient) -> None:
    five(sd)
    found = sd.discover_instances(
        NamespaceName="SHOP.local", ServiceName="orders", QueryParameters={"color": "green"}
    )
    assert found["Instances"] == [
        {
            "InstanceId": "i-5",
            "NamespaceName": "shop.local",
            "ServiceName": "orders",
            "HealthStatus": "UNHEALTHY",
            "Attributes": addr(5, color="green", AWS_INIT_HEALTH_STATUS="UNHEALTHY"),
        }
    ]
    assert found["InstancesRevision"] == 5
    everyone = ["i-1", "i-2", "i-3", "i-4", "i-5"]
    assert discovered(sd) == everyone
    assert discovered(sd, HealthStatus="ALL") == everyone
    assert discovered(sd, HealthStatus="HEALTHY") == ["i-1", "i-3"]
    assert discovered(sd, HealthStatus="UNHEALTHY") == ["i-2", "i-4", "i-5"]
    assert discovered(sd, HealthStatus="HEALTHY_OR_ELSE_ALL") == ["i-1", "i-3"]
    assert discovered(sd, QueryParameters={"color": "red"}) == ["i-1", "i-2"]
    assert discovered(sd, QueryParameters={"color": "red"}, HealthStatus="HEALTHY") == ["i-1"]
    assert discovered(sd, OptionalParameters={"color": "blue"}) == ["i-3", "i-4"]
    assert discovered(sd, OptionalParameters={"color": "pink"}) == everyone
    assert len(discovered(sd, MaxResults=2)) == 2


def test_discover_fails_open(sd: ServiceDiscoveryClient) -> None:
    service_id = five(sd)
    for n in (1, 3):
        sd.update_instance_custom_health_status(
            ServiceId=service_id, InstanceId=f"i-{n}", Status="UNHEALTHY"
        )
    assert discovered(sd, HealthStatus="HEALTHY") == []
    assert discovered(sd, HealthStatus="HEALTHY_OR_ELSE_ALL") == ["i-1", "i-2", "i-3", "i-4", "i-5"]


def test_discover_shuffles(sd: ServiceDiscoveryClient) -> None:
    service_id = orders(sd, custom=False)
    for n in range(1, 6):
        sd.register_instance(ServiceId=service_id, InstanceId=f"i-{n}", Attributes=addr(n))
    firsts = Counter(
        sd.discover_instances(NamespaceName="shop.local", ServiceName="orders")["Instances"][0][
            "InstanceId"
        ]
        for _ in range(50)
    )
    assert len(firsts) > 1  # the same instance first 50 times: odds 5 * (1/5)^50


def test_discover_errors(sd: ServiceDiscoveryClient) -> None:
    orders(sd)
    cases: list[tuple[dict[str, Any], tuple[str, int]]] = [
        ({"NamespaceName": "nowhere", "ServiceName": "orders"}, ("NamespaceNotFound", 404)),
        ({"NamespaceName": "shop.local", "ServiceName": "nothing"}, ("ServiceNotFound", 404)),
        (
            {"NamespaceName": "shop.local", "ServiceName": "orders", "MaxResults": 1001},
            ("InvalidInput", 400),
        ),
        (
            {"NamespaceName": "shop.local", "ServiceName": "orders", "HealthStatus": "MOSTLY"},
            ("InvalidInput", 400),
        ),
        (
            {
                "NamespaceName": "shop.local",
                "ServiceName": "orders",
                "OwnerAccount": "999999999999",
            },
            ("NamespaceNotFound", 404),
        ),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as exc:
            sd.discover_instances(**kwargs)
        assert error_of(exc) == expected, kwargs
    with pytest.raises(ClientError) as exc:
        sd.discover_instances_revision(NamespaceName="shop.local", ServiceName="nothing")
    assert error_of(exc) == ("ServiceNotFound", 404)


def test_the_revision_moves_on_registration_changes_only(sd: ServiceDiscoveryClient) -> None:
    service_id = orders(sd)

    def revision() -> int:
        found = sd.discover_instances_revision(NamespaceName="shop.local", ServiceName="orders")
        return found["InstancesRevision"]

    assert revision() == 0
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=ADDR)
    assert revision() == 1
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=ADDR)
    sd.update_instance_custom_health_status(
        ServiceId=service_id, InstanceId="i-1", Status="UNHEALTHY"
    )
    assert revision() == 1
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=addr(2))
    sd.deregister_instance(ServiceId=service_id, InstanceId="i-1")
    assert revision() == 3


def test_custom_health_and_health_status(sd: ServiceDiscoveryClient) -> None:
    service_id = five(sd)
    statuses = sd.get_instances_health_status(ServiceId=service_id)["Status"]
    assert statuses == {
        "i-1": "HEALTHY",
        "i-2": "UNHEALTHY",
        "i-3": "HEALTHY",
        "i-4": "UNHEALTHY",
        "i-5": "UNHEALTHY",
    }
    some = sd.get_instances_health_status(ServiceId=service_id, Instances=["i-5", "i-1"])
    assert some["Status"] == {"i-5": "UNHEALTHY", "i-1": "HEALTHY"}
    first = sd.get_instances_health_status(ServiceId=service_id, MaxResults=3)
    assert list(first["Status"]) == ["i-1", "i-2", "i-3"]
    rest = sd.get_instances_health_status(
        ServiceId=service_id, MaxResults=3, NextToken=first["NextToken"]
    )
    assert list(rest["Status"]) == ["i-4", "i-5"]
    with pytest.raises(ClientError) as exc:
        sd.get_instances_health_status(ServiceId=service_id, Instances=["i-9"])
    assert error_of(exc) == ("InstanceNotFound", 404)
    plain = sd.create_service(Name="plain", NamespaceId=http_namespace(sd))["Service"]["Id"]
    sd.register_instance(ServiceId=plain, InstanceId="p-1", Attributes={})
    assert sd.get_instances_health_status(ServiceId=plain)["Status"] == {"p-1": "UNKNOWN"}
    with pytest.raises(ClientError) as exc:
        sd.update_instance_custom_health_status(ServiceId=plain, InstanceId="p-1", Status="HEALTHY")
    assert error_of(exc) == ("CustomHealthNotFound", 404)
    with pytest.raises(ClientError) as exc:
        sd.update_instance_custom_health_status(
            ServiceId=service_id, InstanceId="x", Status="HEALTHY"
        )
    assert error_of(exc) == ("InstanceNotFound", 404)


def test_list_operations(sd: ServiceDiscoveryClient) -> None:
    before = time.time() - 1
    service_id = orders(sd)
    namespace_id = sd.get_service(Id=service_id)["Service"]["NamespaceId"]
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=ADDR)
    sd.deregister_instance(ServiceId=service_id, InstanceId="i-1")
    every = sd.list_operations()["Operations"]
    assert [op["Status"] for op in every] == ["SUCCESS"] * 3

    def types(*filters: Any) -> list[str]:
        found = sd.list_operations(Filters=list(filters))["Operations"]
        return [sd.get_operation(OperationId=op["Id"])["Operation"]["Type"] for op in found]

    assert types({"Name": "SERVICE_ID", "Values": [service_id]}) == [
        "REGISTER_INSTANCE",
        "DEREGISTER_INSTANCE",
    ]
    assert types({"Name": "NAMESPACE_ID", "Values": [namespace_id]}) == ["CREATE_NAMESPACE"]
    assert types(
        {"Name": "TYPE", "Values": ["CREATE_NAMESPACE", "DEREGISTER_INSTANCE"], "Condition": "IN"}
    ) == ["CREATE_NAMESPACE", "DEREGISTER_INSTANCE"]
    assert types({"Name": "STATUS", "Values": ["FAIL"]}) == []
    window = [str(before), str(time.time() + 1)]
    assert len(types({"Name": "UPDATE_DATE", "Values": window, "Condition": "BETWEEN"})) == 3
    assert types({"Name": "UPDATE_DATE", "Values": ["0", "1"], "Condition": "BETWEEN"}) == []
    pages = sd.get_paginator("list_operations").paginate(PaginationConfig={"PageSize": 2})
    assert [len(page["Operations"]) for page in pages] == [2, 1]


def test_the_data_host_prefix_is_accepted(sd: ServiceDiscoveryClient, api: ApiThread) -> None:
    service_id = orders(sd)
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=ADDR)
    for host in (f"data-localhost:{api.port}", f"data-127.0.0.1:{api.port}"):
        response = httpx.post(
            api.url + "/",
            headers={
                "Host": host,
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "Route53AutoNaming_v20170314.DiscoverInstances",
            },
            content=b'{"NamespaceName": "shop.local", "ServiceName": "orders"}',
        )
        assert response.status_code == 200
        assert [i["InstanceId"] for i in response.json()["Instances"]] == ["i-1"]


class _Raw:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def test_boto3_puts_the_data_prefix_on_discovery_calls(api: ApiThread) -> None:
    """Why clients need `inject_host_prefix=False`: without it boto3 asks `data-127.0.0.1`,
    a name that does not resolve. Its exact request, relayed to the server, is answered."""
    client = api.client(inject_host_prefix=True)
    seen: list[str] = []

    def relay(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        seen.append(request.url)
        headers = {**request.headers, "Host": urlsplit(request.url).netloc}
        body = request.body if isinstance(request.body, bytes) else b""
        reply = httpx.post(api.url + "/", headers=headers, content=body)
        return AWSResponse(
            request.url,
            reply.status_code,
            HTTPHeaders.from_pairs(list(reply.headers.items())),
            _Raw(reply.content),
        )

    client.meta.events.register(
        "before-send.servicediscovery.DiscoverInstances",
        relay,  # type: ignore[arg-type]
    )
    with pytest.raises(ClientError) as exc:
        client.discover_instances(NamespaceName="shop.local", ServiceName="orders")
    assert error_of(exc) == ("NamespaceNotFound", 404)
    assert seen == [f"http://data-127.0.0.1:{api.port}/"]
    assert client.list_namespaces()["Namespaces"] == []  # other calls keep the plain host


def test_the_registry_survives_a_restart(
    sd: ServiceDiscoveryClient, api: ApiThread, tmp_path: Path
) -> None:
    path = tmp_path / "discovery.sqlite"
    api.reopen(path)
    service_id = orders(sd)
    sd.register_instance(ServiceId=service_id, InstanceId="i-1", Attributes=ADDR)
    sd.update_instance_custom_health_status(
        ServiceId=service_id, InstanceId="i-1", Status="UNHEALTHY"
    )
    sd.tag_resource(
        ResourceARN=sd.get_service(Id=service_id)["Service"]["Arn"],
        Tags=[{"Key": "a", "Value": "b"}],
    )
    api.run(lambda: api.registry.register_instance(service_id, "s-1", ADDR, owner=Owner.SUPERVISOR))
    before: dict[str, Any] = {
        "namespaces": sd.list_namespaces()["Namespaces"],
        "service": sd.get_service(Id=service_id)["Service"],
        "operations": sd.list_operations()["Operations"],
    }
    api.reopen(path)  # a restarted node
    after = {
        "namespaces": sd.list_namespaces()["Namespaces"],
        "service": sd.get_service(Id=service_id)["Service"],
        "operations": sd.list_operations()["Operations"],
    }
    before["service"]["InstanceCount"] = 1  # the supervised instance is gone
    assert after == before
    found = sd.discover_instances(NamespaceName="shop.local", ServiceName="orders")
    assert [(i["InstanceId"], i["HealthStatus"]) for i in found["Instances"]] == [
        ("i-1", "UNHEALTHY")
    ]
    assert found["InstancesRevision"] == 2
    tags = sd.list_tags_for_resource(ResourceARN=before["service"]["Arn"])["Tags"]
    assert tags == [{"Key": "a", "Value": "b"}]
    assert (
        api.run(lambda: api.registry.get_instance(service_id, "i-1").health)
        is HealthStatus.UNHEALTHY
    )


def test_a_failed_write_changes_nothing(
    sd: ServiceDiscoveryClient, api: ApiThread, tmp_path: Path
) -> None:
    path = tmp_path / "discovery.sqlite"
    registry = api.reopen(path)
    service_id = orders(sd)
    store = registry._store
    assert store is not None
    api.run(store.close)  # every later write fails, as on a vanished disk
    response = httpx.post(
        api.url + "/",
        headers={"X-Amz-Target": "Route53AutoNaming_v20170314.RegisterInstance"},
        content=b'{"ServiceId": "%s", "InstanceId": "i-1", "Attributes": {"AWS_INSTANCE_IPV4": '
        b'"10.0.0.1", "AWS_INSTANCE_PORT": "80"}}' % service_id.encode(),
    )
    assert response.status_code == 500
    error = response.json()
    assert error["__type"] == "InternalFailure"
    assert error["Message"].startswith(f"{path}: the discovery registry's state cannot be written")
    assert sd.list_instances(ServiceId=service_id)["Instances"] == []
    assert (
        sd.discover_instances_revision(NamespaceName="shop.local", ServiceName="orders")[
            "InstancesRevision"
        ]
        == 0
    )
