"""IAM authorization (`AWS_IAM`): Signature Version 4 for service `execute-api`, checked against the
credentials fogbank is configured with (`NodeConfig.iam_credentials`, access key -> secret).

The expected signature is computed by botocore's own signer over the request rebuilt as it
arrived (method, raw path, raw query, the headers named in `SignedHeaders`, the body), so any
client botocore can talk to passes exactly when AWS would let it; the comparison is constant-time.
The request's `X-Amz-Date` (or `Date`) must be within 15 minutes of the node's clock. A region
is not enforced: the credential scope's own region is used, so a client configured for any
region works. Presigned URLs (signature in the query) are not accepted.

Refusals are all 403, in AWS's words: no `Authorization` header is `Missing Authentication Token`
(REST) / `Forbidden` (HTTP API); an unknown access key `The security token included in the
request is invalid.`; a wrong signature AWS's long message (REST adds the canonical request and
string to sign it expected, as AWS does, which makes client bugs findable).
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import hmac
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from fogbank.gateway._auth_common import Clock, forbidden
from fogbank.gateway._errors import GatewayError
from fogbank.gateway._types import HttpRequest
from fogbank.model import ApiKind, Identity

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 15 * 60
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your"
    " AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_REQUIREMENTS = (
    ("Credential", "Authorization header requires 'Credential' parameter."),
    ("Signature", "Authorization header requires 'Signature' parameter."),
    ("SignedHeaders", "Authorization header requires 'SignedHeaders' parameter."),
)


def _denied(message: str, error_type: str) -> GatewayError:
    return GatewayError(403, message, error_type)


class _Signer(SigV4Auth):
    """botocore's signer, told to sign exactly the headers the client said it signed.

    (botocore's own choice leaves out a few, `user-agent` among them, that other SDKs sign.)
    """

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name.lower()] = value
        return headers


class SigV4Verifier:
    """Checks one request's SigV4 signature; returns who signed it."""

    def __init__(
        self, credentials: Mapping[str, str], identity: Identity, clock: Clock = time.time
    ) -> None:
        self.credentials = dict(credentials)
        self.identity = identity
        self.clock = clock

    def verify(self, request: HttpRequest, kind: ApiKind) -> dict[str, str]:
        """The caller (`accessKey`, `accountId`, `userArn`, ...) or a 403 `GatewayError`."""
        header = request.header("authorization")
        if not header:
            if kind is ApiKind.HTTP:
                raise forbidden()
            raise _denied("Missing Authentication Token", "MissingAuthenticationTokenException")
        params = _parameters(header)
        stamp = request.header("x-amz-date") or _from_http_date(request.header("date"))
        missing = [text for name, text in _REQUIREMENTS if not params.get(name)]
        if stamp is None:
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            )
        if missing or not header.startswith(ALGORITHM):
            detail = " ".join(missing) or "Unsupported signing algorithm."
            raise _denied(f"{detail} Authorization={header}", "IncompleteSignatureException")
        scope = params["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise _denied(
                f"Credential should be scoped to a valid region, not '{scope[2] if len(scope) > 2 else ''}'. ",
                "IncompleteSignatureException",
            )
        access_key, _, region, service, _ = scope
        if service != SERVICE:
            raise _denied(
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
                "IncompleteSignatureException",
            )
        assert stamp is not None
        self._check_time(stamp)
        secret = self.credentials.get(access_key)
        if secret is None:
            raise _denied(
                "The security token included in the request is invalid.",
                "UnrecognizedClientException",
            )
        signed = [name.strip().lower() for name in params["SignedHeaders"].split(";")]
        aws_request = _rebuilt(request, signed, stamp)
        signer = _Signer(Credentials(access_key, secret), SERVICE, region)
        canonical = signer.canonical_request(aws_request)
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        expected = signer.signature(string_to_sign, aws_request)
        if not hmac.compare_digest(expected, params["Signature"]) or not _payload_ok(request):
            message = _MISMATCH
            if kind is ApiKind.REST:
                message += (
                    f"\n\nThe Canonical String for this request should have been\n'{canonical}'"
                    f"\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
                )
            raise _denied(message, "InvalidSignatureException")
        return self._caller(access_key)

    def _check_time(self, stamp: str) -> None:
        try:
            signed_at = calendar.timegm(time.strptime(stamp, _AMZ_DATE))
        except ValueError:
            raise _denied(
                f"Date must be in ISO-8601 'basic format'. Got '{stamp}'.",
                "IncompleteSignatureException",
            ) from None
        now = self.clock()
        if signed_at < now - MAX_SKEW_S:
            raise _denied(
                f"Signature expired: {stamp} is now earlier than {_stamp(now - MAX_SKEW_S)}"
                f" ({_stamp(now)} - 15 min.)",
                "InvalidSignatureException",
            )
        if signed_at > now + MAX_SKEW_S:
            raise _denied(
                f"Signature not yet current: {stamp} is still later than"
                f" {_stamp(now + MAX_SKEW_S)} ({_stamp(now)} + 15 min.)",
                "InvalidSignatureException",
            )

    def _caller(self, access_key: str) -> dict[str, str]:
        # fogbank's credentials have no user names: the access key stands for the user.
        account = self.identity.account_id
        return {
            "accessKey": access_key,
            "accountId": account,
            "caller": access_key,
            "user": access_key,
            "userArn": f"arn:aws:iam::{account}:user/{access_key}",
        }


def http_api_identity(caller: Mapping[str, str]) -> dict[str, Any]:
    """`requestContext.authorizer.iam` of an HTTP API event."""
    return {
        "accessKey": caller["accessKey"],
        "accountId": caller["accountId"],
        "callerId": caller["caller"],
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": caller["userArn"],
        "userId": caller["user"],
    }


def _parameters(header: str) -> dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` -> its parameters."""
    _, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip()
    return params


def _rebuilt(request: HttpRequest, signed: list[str], stamp: str) -> AWSRequest:
    """The request as the client signed it: only its signed headers, its path and query as sent."""
    host = request.header("host") or request.host
    query = request.query_string.decode("latin-1")
    url = f"{request.scheme}://{host}{request.raw_path}" + (f"?{query}" if query else "")
    rebuilt = AWSRequest(method=request.method, url=url, data=request.body)
    for name, value in request.headers:
        if name in signed:
            rebuilt.headers[name] = value
    rebuilt.context["timestamp"] = stamp
    return rebuilt


def _payload_ok(request: HttpRequest) -> bool:
    """A signed `x-amz-content-sha256` must be the body's hash (else the body was changed)."""
    claimed = request.header("x-amz-content-sha256")
    if claimed is None or claimed == _UNSIGNED_PAYLOAD:
        return True
    return hmac.compare_digest(claimed, hashlib.sha256(request.body).hexdigest())


def _from_http_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(datetime.UTC).strftime(_AMZ_DATE)


def _stamp(epoch: float) -> str:
    return time.strftime(_AMZ_DATE, time.gmtime(epoch))
