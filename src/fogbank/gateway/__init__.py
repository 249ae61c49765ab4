"""The data plane: API Gateway REST and HTTP APIs and Function URLs in front of the functions."""

from __future__ import annotations

from collections.abc import Callable

from fogbank.functions._types import Invoker
from fogbank.gateway._asgi import DataPlane
from fogbank.gateway._canary import CanarySplit
from fogbank.gateway._cors import CorsPreflight, add_cors_headers
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
from fogbank.model import App, Identity


class Gateway:
    """The assembled pipeline and its ASGI front, owned by a node."""

    def __init__(
        self, app_provider: Callable[[], App], invoker: Invoker, identity: Identity
    ) -> None:
        self.http_proxy = HttpProxy()
        self.canary = CanarySplit()
        """Its `rng` decides canary requests; tests replace it with a seeded one."""
        steps: list[Step] = [
            SelectRoute(),
            self.canary,
            LimitBody(),
            CorsPreflight(),
            LambdaProxy(invoker, identity),
            MockIntegration(),
            self.http_proxy,
        ]
        self.pipeline = Pipeline(app_provider, steps, finishers=[add_cors_headers, add_request_id])
        self.asgi = DataPlane(self.pipeline)

    async def close(self) -> None:
        await self.http_proxy.close()


__all__ = ["DataPlane", "Exchange", "Gateway", "HttpRequest", "HttpResponse", "Pipeline", "Step"]
