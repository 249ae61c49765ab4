"""Lambda authorizers: REST `TOKEN` and `REQUEST`, HTTP API payload 1.0 and 2.0.

The function is called through the node's `Invoker`, like any integration, with the event API
Gateway sends; its answer is checked (`_auth_policy`) *before* it is cached, so a garbage answer
is never reused. A cached answer is keyed by the identity source values and re-evaluated against
each request's method ARN: a policy that allows `GET /items/*` for one caller then answers that
caller's `DELETE` with a 403 without calling the function again.
"""

from __future__ import annotations

import collections
import re
import time
from functools import lru_cache
from typing import Any

import orjson

from fogbank.functions._resolve import resolve
from fogbank.functions._types import InvocationError, Invoker, InvokeRequest, InvokeResult
from fogbank.gateway._auth_common import (
    access_denied,
    authorizer_failure,
    cache_key,
    identity_values,
    method_arn,
    unauthorized,
)
from fogbank.gateway._auth_policy import (
    BadAuthorizerOutput,
    Decision,
    PolicyAnswer,
    SimpleAnswer,
    policy_answer,
    simple_answer,
)
from fogbank.gateway._events import http_event, http_event_v1, rest_event
from fogbank.gateway._lambda import invoke_within
from fogbank.gateway._pipeline import Exchange, new_request_id
from fogbank.gateway._types import RouteMatch
from fogbank.model import ApiKind, Authorizer, AuthorizerType, Identity
from fogbank.store._protocols import ResponseCache

REST_AUTHORIZER_TIMEOUT_S = 29.0
HTTP_AUTHORIZER_TIMEOUT_S = 10.0
"""HTTP APIs give a Lambda authorizer 10 seconds; REST APIs the integration limit, 29."""
_UNAUTHORIZED_ERROR = "Unauthorized"
"""A REST authorizer that fails with exactly this message asks for a 401 (the documented idiom)."""


class LambdaAuthorizers:
    """Calls Lambda authorizers and turns their answers into `requestContext.authorizer`."""

    def __init__(self, invoker: Invoker, identity: Identity, cache: ResponseCache) -> None:
        self._invoker = invoker
        self._identity = identity
        self._cache = cache
        self._decided: collections.OrderedDict[tuple[bytes, str, bool], dict[str, Any] | bool] = (
            collections.OrderedDict()
        )
        """(cached answer, method ARN, simple) -> what it established, or whether an explicit
        deny: a cached answer is the same bytes request after request, and decoding and
        evaluating its policy again is most of the cost of a cached authorization."""

    async def authorize(
        self, exchange: Exchange, match: RouteMatch, authorizer: Authorizer
    ) -> dict[str, Any]:
        """What the authorizer established; raises the gateway's 401 / 403 / 500 otherwise."""
        request, kind = exchange.request, match.api.kind
        values = identity_values(authorizer.identity_sources, request, match)
        if values is None:
            raise unauthorized()
        # Checked before the function is called: a token that does not match never reaches it.
        expression = authorizer.validation_expression
        if (
            authorizer.type is AuthorizerType.TOKEN
            and expression
            and not _regex(expression).fullmatch(values[0])
        ):
            raise unauthorized()
        arn = method_arn(self._identity, match, request.method)
        # Caching needs something to key on: a REQUEST authorizer without sources is always called.
        key = cache_key(match, authorizer, values) if authorizer.ttl_s and values else None
        payload = await self._cache.get(key) if key else None
        latency_ms = 0
        fresh = payload is None
        if payload is None:
            started = time.monotonic()
            payload = await self._call(exchange, match, authorizer, values, arn)
            latency_ms = int((time.monotonic() - started) * 1000)
        memo = (payload, arn, authorizer.simple_responses)
        known = None if fresh else self._decided.get(memo)
        if known is None:
            try:
                answer = _answer(orjson.loads(payload), authorizer, kind)
            except (orjson.JSONDecodeError, BadAuthorizerOutput) as exc:
                raise authorizer_failure(kind) from exc
            if fresh and key is not None:
                await self._cache.put(key, payload, float(authorizer.ttl_s))
            known = _outcome(answer, arn, kind)
            if key is not None:
                self._remember(memo, known)
        if isinstance(known, bool):
            raise access_denied(kind, explicit=known)
        if kind is ApiKind.REST:
            return {**known, "integrationLatency": latency_ms}
        return dict(known)

    def _remember(self, memo: tuple[bytes, str, bool], outcome: dict[str, Any] | bool) -> None:
        # Bounded: identity values are per caller, and callers come and go.
        self._decided[memo] = outcome
        if len(self._decided) > _DECIDED_MAX:
            self._decided.popitem(last=False)

    async def _call(
        self,
        exchange: Exchange,
        match: RouteMatch,
        authorizer: Authorizer,
        values: list[str],
        arn: str,
    ) -> bytes:
        kind = match.api.kind
        event = self._event(exchange, match, authorizer, values, arn)
        try:
            found = resolve(exchange.app, authorizer.function_name or "", identity=self._identity)
        except InvocationError as exc:
            raise authorizer_failure(kind) from exc
        request = InvokeRequest(
            function_name=found.function.name,
            config=found.config,
            payload=orjson.dumps(event),
            request_id=new_request_id(),
            invoked_arn=found.invoked_arn,
            trace_id=exchange.request.header("x-amzn-trace-id") or "",
        )
        limit = REST_AUTHORIZER_TIMEOUT_S if kind is ApiKind.REST else HTTP_AUTHORIZER_TIMEOUT_S
        result = await self._invoke(request, kind, limit)
        if result.function_error:
            if kind is ApiKind.REST and _error_message(result.payload) == _UNAUTHORIZED_ERROR:
                raise unauthorized()
            raise authorizer_failure(kind)
        return result.payload

    async def _invoke(self, request: InvokeRequest, kind: ApiKind, limit_s: float) -> InvokeResult:
        try:
            return await invoke_within(self._invoker, request, limit_s)
        except TimeoutError:
            raise authorizer_failure(kind) from None
        except InvocationError as exc:
            raise authorizer_failure(kind) from exc

    def _event(
        self,
        exchange: Exchange,
        match: RouteMatch,
        authorizer: Authorizer,
        values: list[str],
        arn: str,
    ) -> dict[str, Any]:
        """The event API Gateway sends the authorizer: the request minus its body, plus the ARN."""
        request, rid = exchange.request, exchange.request_id
        if authorizer.type is AuthorizerType.TOKEN:
            return {"type": "TOKEN", "authorizationToken": values[0], "methodArn": arn}
        if match.api.kind is ApiKind.REST:
            event = rest_event(request, match, request_id=rid, identity=self._identity)
            event.update(type="REQUEST", methodArn=arn)
        elif authorizer.payload_format_version == "1.0":
            event = http_event_v1(request, match, request_id=rid, identity=self._identity)
            joined = ",".join(values)
            event.update(
                type="REQUEST", methodArn=arn, identitySource=joined, authorizationToken=joined
            )
        else:
            event = http_event(request, match, request_id=rid, identity=self._identity)
            event.update(type="REQUEST", routeArn=arn, identitySource=values)
        event.pop("body", None)
        event.pop("isBase64Encoded", None)
        return event


def _answer(parsed: Any, authorizer: Authorizer, kind: ApiKind) -> PolicyAnswer | SimpleAnswer:
    if kind is ApiKind.HTTP and authorizer.simple_responses:
        return simple_answer(parsed)
    return policy_answer(parsed, flatten=kind is ApiKind.REST)


def _outcome(answer: PolicyAnswer | SimpleAnswer, arn: str, kind: ApiKind) -> dict[str, Any] | bool:
    """The answer's verdict for this ARN: what `requestContext.authorizer` holds (without the
    latency, which each request adds), or, when refused, whether the deny was explicit."""
    if isinstance(answer, SimpleAnswer):
        return {"lambda": answer.context} if answer.authorized else True
    decision = answer.decide(arn)
    if decision is not Decision.ALLOW:
        return decision is Decision.EXPLICIT_DENY
    if kind is ApiKind.HTTP:
        return {"lambda": answer.context}
    established: dict[str, Any] = {"principalId": answer.principal_id, **answer.context}
    if answer.usage_identifier_key is not None:
        # Read by the usage-plan step when the API's key source is AUTHORIZER.
        established["usageIdentifierKey"] = answer.usage_identifier_key
    return established


def _error_message(payload: bytes) -> str | None:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    message = document.get("errorMessage") if isinstance(document, dict) else None
    return message if isinstance(message, str) else None


_DECIDED_MAX = 4096


@lru_cache(maxsize=256)
def _regex(expression: str) -> re.Pattern[str]:
    try:
        return re.compile(expression)
    except re.error:
        # An expression Python cannot read matches nothing, so no token gets through it.
        return re.compile(r"(?!)")
