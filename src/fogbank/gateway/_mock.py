"""MOCK integrations: API Gateway answers from the integration responses, without a backend."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.model import IntegrationResponse, IntegrationType


class MockIntegration:
    """Selects an integration response by the status code the request template sets.

    VTL is not evaluated: a request template that is plain JSON with a `statusCode` selects the
    response (the usual `{"statusCode": 200}`), and response templates are returned verbatim.
    """

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch):
            return None
        integration = match.route.integration
        if integration.type is not IntegrationType.MOCK:
            return None
        selected = _select(integration.responses, _status_from(integration.request_templates))
        if selected is None:
            return HttpResponse(
                status=200, headers=[("content-type", "application/json")], body=b""
            )
        headers: list[tuple[str, str]] = []
        for target, source in selected.response_parameters.items():
            prefix = "method.response.header."
            if target.startswith(prefix) and len(source) >= 2 and source[0] == source[-1] == "'":
                headers.append((target[len(prefix) :].lower(), source[1:-1]))
        body = b""
        content_type = "application/json"
        if selected.response_templates:
            content_type, template = next(iter(selected.response_templates.items()))
            body = (template or "").encode()
        if not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", content_type))
        return HttpResponse(status=int(selected.status_code), headers=headers, body=body)


def _status_from(templates: Mapping[str, str]) -> str:
    if templates:
        for template in templates.values():
            try:
                doc = json.loads(template)
            except (TypeError, ValueError):
                continue
            if isinstance(doc, dict) and "statusCode" in doc:
                return str(doc["statusCode"])
    return "200"


def _select(responses: tuple[IntegrationResponse, ...], status: str) -> IntegrationResponse | None:
    default = None
    for response in responses:
        pattern = response.selection_pattern
        if not pattern:
            default = default or response
        elif re.fullmatch(pattern, status):
            return response
    return default
