"""Admin operations on long-running services, shaped after ECS's `DescribeServices` and
`UpdateService`: read the supervisor's view, scale, force a new deployment.

`POST /admin/services/{name}` takes `{"desiredCount": N}` and/or `{"forceNewDeployment": true}`
(ECS's field names). A change made here lasts until the node restarts or the template is
deployed again: the template's count and spec come back then, as a CloudFormation update would
put them back on AWS.
"""

from __future__ import annotations

from typing import Any, Protocol

from fogbank.admin._app import AdminRequest, Operation, Reply
from fogbank.admin._errors import BadRequest, NotFound
from fogbank.services import ServiceStatus

MAX_DESIRED = 100


class ServiceOperations(Protocol):
    """What the node offers the admin API for its services."""

    def service_statuses(self) -> list[ServiceStatus]: ...

    async def update_service(
        self, name: str, *, desired_count: int | None, force_new_deployment: bool
    ) -> ServiceStatus | None:
        """The service's status after the change, or None when there is no such service."""
        ...


class Services:
    """`GET /admin/services`, `GET /admin/services/{name}`, `POST /admin/services/{name}`."""

    def __init__(self, control: ServiceOperations) -> None:
        self.control = control

    def operations(self) -> list[Operation]:
        return [
            Operation("GET", "/admin/services", self.list_services),
            Operation("GET", "/admin/services/{name}", self.get_service),
            Operation("POST", "/admin/services/{name}", self.update_service),
        ]

    async def list_services(self, request: AdminRequest) -> Reply:
        return Reply(body={"services": [view(s) for s in self.control.service_statuses()]})

    async def get_service(self, request: AdminRequest) -> Reply:
        name = request.params["name"]
        for status in self.control.service_statuses():
            if status.name == name:
                return Reply(body=view(status))
        raise NotFound(f"Service not found: {name}")

    async def update_service(self, request: AdminRequest) -> Reply:
        name, body = request.params["name"], request.json()
        unknown = set(body) - {"desiredCount", "forceNewDeployment"}
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        count = body.get("desiredCount")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_DESIRED
        ):
            raise BadRequest(f"desiredCount must be a whole number from 0 to {MAX_DESIRED}")
        force = body.get("forceNewDeployment", False)
        if not isinstance(force, bool):
            raise BadRequest("forceNewDeployment must be true or false")
        if count is None and not force:
            raise BadRequest("Nothing to change: give desiredCount and/or forceNewDeployment")
        status = await self.control.update_service(
            name, desired_count=count, force_new_deployment=force
        )
        if status is None:
            raise NotFound(f"Service not found: {name}")
        return Reply(body=view(status))


def view(status: ServiceStatus) -> dict[str, Any]:
    """A service's status in ECS's vocabulary (camelCase, `lastStatus`, `healthStatus`)."""
    return {
        "serviceName": status.name,
        "revision": status.revision,
        "desiredCount": status.desired,
        "runningCount": status.running,
        "healthyCount": status.healthy,
        "rolloutState": status.rollout.value,
        "rolloutStateReason": status.rollout_reason,
        "failedTasks": status.failed_instances,
        "restarts": status.restarts,
        "tasks": [
            {
                "taskId": task.id,
                "pid": task.pid,
                "port": task.port,
                "revision": task.revision,
                "lastStatus": task.state.value,
                "healthStatus": task.health.value,
                "healthReason": task.health_reason,
                "startedAt": task.started_at,
                "replacing": task.replacing,
            }
            for task in status.instances
        ],
    }
