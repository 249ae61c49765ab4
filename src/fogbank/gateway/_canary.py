"""REST canary releases: a share of a stage's traffic goes to another deployment.

A stage with `canarySettings` sends each request, with probability `percentTraffic / 100`, to the
canary deployment instead of the stage's own, with the canary's stage variable overrides laid
over the stage's variables. The split runs right after route selection, so everything after it
(authorizers, throttling, cache, integration) sees the route and variables the canary serves. A
route only the canary deployment has (the selector marks such a match `canary_only`) is served
to canary requests and is "no route" for the others.

A canary request is marked `exchange.notes["canary"] = True`: the cache step shares the stage
cache with canary requests only when `useStageCache` is on. API Gateway exposes the flag as
`$context.isCanaryRequest` in mapping templates and access logs; Lambda proxy events carry no such
field on AWS, so neither do fogbank's.
"""

from __future__ import annotations

import random

from fogbank.gateway._errors import no_route
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.model import ApiKind, Stage

CANARY_NOTE = "canary"


class CanarySplit:
    """The pipeline step that picks the canary for a share of a REST stage's requests.

    `rng` decides each request (seed it in tests for a reproducible split).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch) or match.api.kind is not ApiKind.REST:
            return None
        settings = match.api.management.stage_settings.get(match.stage.name)
        canary = settings.canary if settings is not None else None
        drawn = (
            canary is not None
            and canary.percent_traffic > 0.0
            and self.rng.random() * 100.0 < canary.percent_traffic
        )
        if canary is None or not drawn:
            if match.canary_only:
                raise no_route(ApiKind.REST)  # only the canary deployment has this route
            return None
        exchange.notes[CANARY_NOTE] = True
        variables = {**match.stage.variables, **canary.stage_variable_overrides}
        stage = Stage(match.stage.name, variables)
        if match.canary_only:
            # The selector matched it in the canary deployment already.
            match.stage, match.canary_only = stage, False
            return None
        found = exchange.selector.rematch(exchange.request, match, canary.deployment_id, stage)
        if found is None:
            # The canary deployment has no such route: API Gateway answers as for any such request.
            raise no_route(ApiKind.REST)
        exchange.match = found
        return None
