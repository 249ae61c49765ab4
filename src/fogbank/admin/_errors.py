"""The admin API's errors, in API Gateway's shape: `{"message": ...}` and `x-amzn-ErrorType`.

botocore reads the error code from the `x-amzn-ErrorType` header, so a boto3 caller gets a
`ClientError` whose `Error.Code` is the exception name, as against AWS.
"""

from __future__ import annotations

from fogbank._errors import FogbankError


class AdminError(FogbankError):
    """A request the admin API refuses; `status` and `error_type` follow botocore's models."""

    status = 500
    error_type = "InternalServerErrorException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class BadRequest(AdminError):
    status = 400
    error_type = "BadRequestException"


class Unauthorized(AdminError):
    """No admin token, or a wrong one (the `apigateway` model's 401)."""

    status = 401
    error_type = "UnauthorizedException"


class AccessDenied(AdminError):
    """The `apigatewayv2` model has no 401; a missing or wrong token is its 403."""

    status = 403
    error_type = "AccessDeniedException"


class NotFound(AdminError):
    status = 404
    error_type = "NotFoundException"


class Conflict(AdminError):
    status = 409
    error_type = "ConflictException"
