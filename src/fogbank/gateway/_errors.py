"""API Gateway's own error responses, rendered in exactly one place."""

from __future__ import annotations

import orjson

from fogbank._errors import FogbankError
from fogbank.gateway._types import HttpResponse
from fogbank.model import ApiKind

# AWS's `x-amzn-ErrorType` names the gateway response type in all but a few cases; those pass
# `response_type` explicitly (a 400 is a body or a parameter problem, a 500 an integration's).
_RESPONSE_TYPES = {
    "AccessDeniedException": "ACCESS_DENIED",
    "AuthorizerConfigurationException": "AUTHORIZER_CONFIGURATION_ERROR",
    "AuthorizerFailureException": "AUTHORIZER_FAILURE",
    "ExpiredTokenException": "EXPIRED_TOKEN",
    "ForbiddenException": "INVALID_API_KEY",
    "IntegrationTimeout": "INTEGRATION_TIMEOUT",
    "InvalidSignatureException": "INVALID_SIGNATURE",
    "LimitExceededException": "QUOTA_EXCEEDED",
    "MissingAuthenticationTokenException": "MISSING_AUTHENTICATION_TOKEN",
    "NotFoundException": "RESOURCE_NOT_FOUND",
    "RequestTooLongException": "REQUEST_TOO_LARGE",
    "TooManyRequestsException": "THROTTLED",
    "UnauthorizedException": "UNAUTHORIZED",
    "UnsupportedMediaTypeException": "UNSUPPORTED_MEDIA_TYPE",
}


class GatewayError(FogbankError):
    """A response the gateway gives instead of the integration's, in AWS's shape.

    `message` is the body's message; `error_type` is `x-amzn-ErrorType` (REST); `kind` selects
    the REST or HTTP API wording when the two differ (see `for_kind`). `response_type` is the
    gateway response type a REST API can customise (`UNAUTHORIZED`, ...): given, or read from
    `error_type`, else `DEFAULT_4XX` / `DEFAULT_5XX` by status.
    """

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        message_key: str = "message",
        headers: list[tuple[str, str]] | None = None,
        response_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.message_key = message_key
        self.headers = headers or []
        self.response_type = response_type or _RESPONSE_TYPES.get(
            error_type, "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        )

    def response(self, kind: ApiKind | None, request_id: str) -> HttpResponse:
        headers = [("content-type", "application/json")]
        if kind is ApiKind.HTTP:
            headers.append(("apigw-requestid", request_id))
        else:
            headers.append(("x-amzn-requestid", request_id))
            headers.append(("x-amzn-errortype", self.error_type))
        headers.extend(self.headers)
        body = orjson.dumps({self.message_key: self.message})
        return HttpResponse(status=self.status, headers=headers, body=body)


def no_route(kind: ApiKind | None) -> GatewayError:
    """An unmatched request: 403 `Missing Authentication Token` (REST) or 404 (HTTP API)."""
    if kind is ApiKind.HTTP:
        return GatewayError(404, "Not Found", "NotFoundException")
    return GatewayError(403, "Missing Authentication Token", "MissingAuthenticationTokenException")


def bad_integration_output(kind: ApiKind | None) -> GatewayError:
    """A Lambda error or a malformed proxy result: 502 (REST) / 500 (HTTP API)."""
    if kind is ApiKind.HTTP:
        return GatewayError(500, "Internal Server Error", "InternalServerErrorException")
    return GatewayError(502, "Internal server error", "InternalServerErrorException")


def integration_timeout(kind: ApiKind | None) -> GatewayError:
    """The integration ran past its timeout: 504 (REST) / 503 (HTTP API)."""
    if kind is ApiKind.HTTP:
        return GatewayError(503, "Service Unavailable", "ServiceUnavailableException")
    return GatewayError(504, "Endpoint request timed out", "IntegrationTimeout")


def too_large(kind: ApiKind | None) -> GatewayError:
    """A request body over 10 MB."""
    return GatewayError(413, "Request Too Long", "RequestTooLongException")


def headers_too_large() -> GatewayError:
    """Request headers over API Gateway's ~10 KB."""
    return GatewayError(431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge")


def throttled(kind: ApiKind | None) -> GatewayError:
    return GatewayError(429, "Too Many Requests", "TooManyRequestsException")


class BadProxyOutput(FogbankError):
    """The function's result is not a valid proxy response (becomes a 502 / 500)."""
