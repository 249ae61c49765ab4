"""Service discovery: the Cloud Map registry and what serves it (the Cloud Map API, DNS)."""

from fogbank.discovery._cloudmap import CloudMapApi, is_cloud_map
from fogbank.discovery._dns import DnsServer
from fogbank.discovery._prober import HealthProber
from fogbank.discovery._records import (
    CloudMapError,
    HealthFilter,
    HealthStatus,
    Instance,
    Namespace,
    Operation,
    OperationStatus,
    Owner,
    Service,
)
from fogbank.discovery._registry import Registry

__all__ = [
    "CloudMapApi",
    "CloudMapError",
    "DnsServer",
    "HealthFilter",
    "HealthProber",
    "HealthStatus",
    "Instance",
    "Namespace",
    "Operation",
    "OperationStatus",
    "Owner",
    "Registry",
    "Service",
    "is_cloud_map",
]
