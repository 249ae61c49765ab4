"""The authorization step: every route that asks for it is authorized before its integration runs.

What a route asks for is its `authorization_type` and `authorizer` (the loader guarantees that
the authorizer exists on the API):

| route | REST API | HTTP API |
| --- | --- | --- |
| `CUSTOM` + a `TOKEN` / `REQUEST` authorizer | Lambda authorizer (`_auth_lambda`) | Lambda authorizer, payload 1.0 or 2.0 |
| `COGNITO_USER_POOLS` | JWT check against the pools' keys (`_auth_jwt`) | - |
| `JWT` | - | JWT check against the issuer's keys |
| `AWS_IAM` | SigV4 (`_auth_iam`) | SigV4 |

What the authorizer established goes to `Exchange.authorizer`, which the event builders put in
`requestContext.authorizer`; an IAM caller of a REST API goes to `requestContext.identity` instead,
through `Exchange.notes[CALLER_NOTE]`. Refusals are raised as `GatewayError`s in AWS's shapes
(`_auth_common`). Function URLs are not authorized here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from fogbank.config import DEFAULT_IAM_CREDENTIALS
from fogbank.functions._types import Invoker
from fogbank.gateway._auth_common import Clock, authorizer_failure
from fogbank.gateway._auth_iam import SigV4Verifier, http_api_identity
from fogbank.gateway._auth_jwt import JwtAuthorizers
from fogbank.gateway._auth_lambda import LambdaAuthorizers
from fogbank.gateway._jwks import JwksClient
from fogbank.gateway._pipeline import CALLER_NOTE, Exchange
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.model import ApiKind, AuthorizerType, Identity
from fogbank.store._cache_memory import MemoryCache
from fogbank.store._protocols import ResponseCache

"""`Exchange.notes` key of the SigV4 caller of a REST route (`accessKey`, `userArn`, ...)."""
_LAMBDA_TYPES = (AuthorizerType.TOKEN, AuthorizerType.REQUEST)


class Authenticate:
    """Pipeline step: authorize the matched route, or answer 401 / 403 / 500 as AWS does.

    `cache` holds Lambda authorizer results (the node's store, shared by nodes in cluster
    mode); without one, a cache of its own in memory. `clock` (epoch seconds) decides
    cache expiry, JWT expiry and SigV4 skew; `jwks` fetches issuers' keys.
    """

    def __init__(
        self,
        invoker: Invoker,
        identity: Identity,
        *,
        iam_credentials: Mapping[str, str] = DEFAULT_IAM_CREDENTIALS,
        cache: ResponseCache | None = None,
        clock: Clock = time.time,
        jwks: JwksClient | None = None,
    ) -> None:
        self.cache = cache if cache is not None else MemoryCache(clock)
        self.jwks = jwks if jwks is not None else JwksClient()
        self.lambdas = LambdaAuthorizers(invoker, identity, self.cache)
        self.jwt = JwtAuthorizers(self.jwks, clock)
        self.iam = SigV4Verifier(iam_credentials, identity, clock)

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch):
            return None
        route = match.route
        kind = match.api.kind
        if route.authorization_type == "AWS_IAM":
            caller = self.iam.verify(exchange.request, kind)
            if kind is ApiKind.HTTP:
                exchange.authorizer = {"iam": http_api_identity(caller)}
            else:
                exchange.notes[CALLER_NOTE] = caller
            return None
        if route.authorization_type == "NONE" or route.authorizer is None:
            return None
        authorizer = match.api.management.authorizers.get(route.authorizer)
        if authorizer is None:
            # Only an API built without the template loader can get here (it checks names).
            raise authorizer_failure(kind)
        if authorizer.type in _LAMBDA_TYPES:
            exchange.authorizer = await self.lambdas.authorize(exchange, match, authorizer)
        else:
            exchange.authorizer = await self.jwt.authorize(exchange, match, authorizer)
        return None

    async def close(self) -> None:
        await self.jwks.close()
