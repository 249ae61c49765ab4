"""The admin API: create and manage APIs, deployments, stages, keys and plans on a running node.

It speaks the wire protocol of API Gateway's management APIs, so boto3's `apigateway` and
`apigatewayv2` clients (and the AWS CLI) drive it unchanged; see docs/admin.md.
"""

from __future__ import annotations

from collections.abc import Callable

from fogbank.admin._app import PREFIXES, AdminApi, AdminRequest, Operation, Reply
from fogbank.admin._auth import ADMIN_ACCESS_KEY
from fogbank.admin._control import AdminControl
from fogbank.admin._errors import AdminError
from fogbank.admin._keys import Keys
from fogbank.admin._restapis import FlushCache, RestApis
from fogbank.admin._services import ServiceOperations, Services
from fogbank.admin._state import AdminStore
from fogbank.admin._v2 import HttpApis
from fogbank.store import QuotaCounter


def admin_api(
    control: AdminControl,
    token: str,
    *,
    quotas: Callable[[], QuotaCounter | None],
    flush_cache: FlushCache | None,
    endpoint: Callable[[str], str],
    services: ServiceOperations | None = None,
) -> AdminApi:
    """The admin API's ASGI application over `control`, guarded by `token`."""
    operations = [
        *RestApis(control, flush_cache).operations(),
        *Keys(control, quotas).operations(),
        *HttpApis(control, endpoint).operations(),
        *(Services(services).operations() if services is not None else ()),
    ]
    return AdminApi(operations, token)


__all__ = [
    "ADMIN_ACCESS_KEY",
    "PREFIXES",
    "AdminApi",
    "AdminControl",
    "AdminError",
    "AdminRequest",
    "AdminStore",
    "Operation",
    "Reply",
    "ServiceOperations",
    "admin_api",
]
