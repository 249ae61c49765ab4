"""The public names: each package re-exports them once, in a sorted `__all__`."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "fogbank": [
        "ConfigError",
        "FogbankError",
        "FunctionsConfig",
        "Node",
        "NodeConfig",
        "TemplateError",
        "__version__",
    ],
    "fogbank.discovery": [
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
    ],
    "fogbank.functions": [
        "AsyncInvoker",
        "AsyncSubmitter",
        "ChunkSink",
        "InMemoryInvoker",
        "InvocationError",
        "InvokeRequest",
        "InvokeResult",
        "Invoker",
        "LocalInvoker",
        "LogStore",
        "ResourceNotFound",
        "TooManyRequests",
    ],
    "fogbank.services": [
        "InstanceHealth",
        "InstanceState",
        "InstanceStatus",
        "RestartPolicy",
        "RolloutState",
        "ServiceControl",
        "ServiceStatus",
        "Supervisor",
    ],
    "fogbank.store": [
        "Clock",
        "EventQueue",
        "MemoryEventQueue",
        "MemoryLimiter",
        "MemoryQuotas",
        "QueuedEvent",
        "QuotaCounter",
        "RateLimiter",
        "RedisLimiter",
        "RedisQuotas",
        "ResponseCache",
        "SqliteEventQueue",
        "Stores",
        "check_stores",
        "close_stores",
        "open_stores",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_sorted_and_complete(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == PUBLIC[module]
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (n.startswith("_"), n))
    for name in mod.__all__:
        assert getattr(mod, name) is not None
