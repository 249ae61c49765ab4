"""What `Ref` and `Fn::GetAtt` give for long-running services and Cloud Map resources.

Cloud Map namespaces and services answer with the ids the registry serves them under
(`discovery_id`), so an `IntegrationUri: !GetAtt CatalogDiscovery.Arn` or a `ServiceRegistries`
entry names the very service the registry holds. ECS resources answer with ARNs of AWS's shape
built from their names; nothing runs under those ARNs, they only let references line up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from fogbank.model._service import NamespaceType, discovery_id

FOGBANK_SERVICE = "Fogbank::Service"
ECS_TASK_DEFINITION = "AWS::ECS::TaskDefinition"
ECS_SERVICE = "AWS::ECS::Service"
ECS_CLUSTER = "AWS::ECS::Cluster"
DISCOVERY_SERVICE = "AWS::ServiceDiscovery::Service"
DISCOVERY_INSTANCE = "AWS::ServiceDiscovery::Instance"
NAMESPACE_TYPES = {
    "AWS::ServiceDiscovery::HttpNamespace": NamespaceType.HTTP,
    "AWS::ServiceDiscovery::PrivateDnsNamespace": NamespaceType.DNS_PRIVATE,
    "AWS::ServiceDiscovery::PublicDnsNamespace": NamespaceType.DNS_PUBLIC,
}

CLOUD_MAP_SERVICE_ARN = re.compile(
    r"arn:[\w-]+:servicediscovery:[\w-]*:\d*:service/(?P<id>srv-[0-9a-z]+)"
)
"""A Cloud Map service ARN; `id` is the service id (`srv-…`)."""
LOAD_BALANCER_LISTENER_ARN = re.compile(r"arn:[\w-]+:elasticloadbalancing:.*:listener/.+")

# Task definitions get one revision each: a template declares one definition per resource.
_TASK_REVISION = 1
_DEFAULT_CLUSTER = "default"

Property = Callable[[str], str | None]
"""The resolved text of one of the resource's own properties, or None when it has none."""
Arn = Callable[[str, str], str]
"""`(service, resource)` -> `arn:{partition}:{service}:{region}:{account}:{resource}`."""


@dataclass(frozen=True, slots=True)
class ServiceResource:
    """One ECS, Cloud Map or `Fogbank::Service` resource, as the intrinsic resolver sees it."""

    kind: str
    logical_id: str
    prop: Property
    arn: Arn
    ref: Callable[[], str]
    """The resource's physical id, as `Ref` gives it (worked out once, by the resolver)."""

    def physical_id(self) -> str | None:
        """What `Ref` gives, or None for a type this module does not describe."""
        kind, prop = self.kind, self.prop
        if kind in NAMESPACE_TYPES:
            return discovery_id("ns", self.logical_id)
        if kind == DISCOVERY_SERVICE:
            return discovery_id("srv", self.logical_id)
        if kind == DISCOVERY_INSTANCE:
            return prop("InstanceId") or self.logical_id
        if kind == ECS_TASK_DEFINITION:
            family = prop("Family") or self.logical_id
            return self.arn("ecs", f"task-definition/{family}:{_TASK_REVISION}")
        if kind == ECS_SERVICE:
            # `Cluster` is a name (`!Ref Cluster`) or a cluster ARN (`!GetAtt Cluster.Arn`).
            cluster = (prop("Cluster") or _DEFAULT_CLUSTER).rsplit("/", 1)[-1]
            return self.arn("ecs", f"service/{cluster}/{self.name()}")
        if kind == ECS_CLUSTER:
            return prop("ClusterName") or self.logical_id
        if kind == FOGBANK_SERVICE:
            return self.name()
        return None

    def name(self) -> str:
        """The resource's own name (`Name`, `ServiceName`), else its logical id."""
        key = "Name" if self.kind == DISCOVERY_SERVICE else "ServiceName"
        return self.prop(key) or self.logical_id

    def attribute(self, attribute: str) -> str | None:
        """What `Fn::GetAtt` gives for `attribute`, or None for an attribute it does not know."""
        kind, ref = self.kind, self.ref
        if kind in NAMESPACE_TYPES:
            if attribute == "Id":
                return ref()
            if attribute == "Arn":
                return self.arn("servicediscovery", f"namespace/{ref()}")
            if attribute == "HostedZoneId" and NAMESPACE_TYPES[kind] is not NamespaceType.HTTP:
                return hosted_zone_id(self.logical_id)
        if kind == DISCOVERY_SERVICE:
            if attribute == "Id":
                return ref()
            if attribute == "Arn":
                return self.arn("servicediscovery", f"service/{ref()}")
            if attribute == "Name":
                return self.name()
        if (kind, attribute) in (
            (ECS_TASK_DEFINITION, "TaskDefinitionArn"),
            (ECS_SERVICE, "ServiceArn"),
        ):
            return ref()
        if kind in (ECS_SERVICE, FOGBANK_SERVICE) and attribute == "Name":
            return self.name()
        if kind == ECS_CLUSTER and attribute == "Arn":
            return self.arn("ecs", f"cluster/{ref()}")
        return None


def hosted_zone_id(logical_id: str) -> str:
    """A stable hosted zone id of Route 53's shape (`Z` and 13 characters); no zone exists."""
    digest = hashlib.sha256(f"hostedzone:{logical_id}".encode()).hexdigest()
    return "Z" + digest[:13].upper()
