"""The data plane: API Gateway REST and HTTP APIs and Function URLs in front of the functions."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fogbank.config import DEFAULT_IAM_CREDENTIALS, NodeConfig
from fogbank.functions._types import Invoker
from fogbank.gateway._asgi import DataPlane
from fogbank.gateway._auth import Authenticate
from fogbank.gateway._balance import Balancer
from fogbank.gateway._cache import StageCache
from fogbank.gateway._canary import CanarySplit
from fogbank.gateway._cors import CorsPreflight, add_cors_headers
from fogbank.gateway._gateway_responses import render_gateway_response
from fogbank.gateway._http_proxy import HttpProxy
from fogbank.gateway._lambda import LambdaProxy
from fogbank.gateway._mock import MockIntegration
from fogbank.gateway._pipeline import (
    Exchange,
    LimitBody,
    Pipeline,
    SelectRoute,
    Step,
    add_request_id,
)
from fogbank.gateway._types import HttpRequest, HttpResponse
from fogbank.gateway._usage import ACCOUNT_THROTTLE, UsagePlans
from fogbank.gateway._validate import ValidateRequest
from fogbank.model import App, Identity, Throttle
from fogbank.store import Clock, Stores, open_stores

if TYPE_CHECKING:
    from fogbank.discovery._registry import Registry


class Gateway:
    """The assembled pipeline and its ASGI front, owned by a node."""

    def __init__(
        self,
        app_provider: Callable[[], App],
        invoker: Invoker,
        identity: Identity,
        *,
        stores: Stores | None = None,
        clock: Clock = time.time,
        account_throttle: Throttle = ACCOUNT_THROTTLE,
        iam_credentials: Mapping[str, str] = DEFAULT_IAM_CREDENTIALS,
        admin_token: str | None = None,
        registry: Registry | None = None,
        zone: str | None = None,
    ) -> None:
        """`stores` hold rate limits and quotas (memory ones when None); `clock` is what
        quota windows, usage days and instance ejections are read from (tests pass one they
        control). `registry` lets HTTP integrations reach discovered services, preferring
        instances in `zone`."""
        balancer = Balancer(registry, zone=zone, clock=clock) if registry is not None else None
        self.http_proxy = HttpProxy(balancer)
        """HTTP integrations; its `balancer` (None without a registry) picks instances."""
        self.stores = stores if stores is not None else open_stores(NodeConfig(), clock)
        self.canary = CanarySplit()
        """Its `rng` decides canary requests; tests replace it with a seeded one."""
        self.authenticate = Authenticate(
            invoker,
            identity,
            iam_credentials=iam_credentials,
            cache=self.stores.cache,
            clock=clock,
        )
        """Authorizers; tests reach its JWKS client (`.jwks`) to move its clock."""
        self.stage_cache = StageCache(self.stores.cache, admin_token=admin_token)
        """REST stage caches; `admin_token` lets a client invalidate entries (see `_cache`)."""
        steps: list[Step] = [
            SelectRoute(),
            self.canary,
            LimitBody(),
            CorsPreflight(),
            self.authenticate,
            UsagePlans(self.stores, clock=clock, account=account_throttle),
            self.stage_cache,
            ValidateRequest(),
            LambdaProxy(invoker, identity),
            MockIntegration(),
            self.http_proxy,
        ]
        self.pipeline = Pipeline(
            app_provider,
            steps,
            # The cache stores the integration's answer before request ids are added to it.
            finishers=[self.stage_cache.finish, add_cors_headers, add_request_id],
            error_renderer=render_gateway_response,
        )
        self.asgi = DataPlane(self.pipeline)

    async def flush_stage_cache(self, api_id: str, stage: str) -> int:
        """Drop a REST stage's cached responses (`FlushStageCache`); how many were dropped."""
        return await self.stage_cache.flush(api_id, stage)

    async def close(self) -> None:
        await self.http_proxy.close()
        await self.authenticate.close()


__all__ = ["DataPlane", "Exchange", "Gateway", "HttpRequest", "HttpResponse", "Pipeline", "Step"]
