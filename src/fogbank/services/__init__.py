"""Long-running services (the Fargate role): supervised local processes, health-checked, rolled
over on new deployments, and registered in the discovery registry."""

from fogbank.services._control import ServiceControl
from fogbank.services._health import InstanceHealth
from fogbank.services._instance import InstanceState
from fogbank.services._rollout import RestartPolicy, RolloutState
from fogbank.services._status import InstanceStatus, ServiceStatus
from fogbank.services._supervisor import Supervisor

__all__ = [
    "InstanceHealth",
    "InstanceState",
    "InstanceStatus",
    "RestartPolicy",
    "RolloutState",
    "ServiceControl",
    "ServiceStatus",
    "Supervisor",
]
