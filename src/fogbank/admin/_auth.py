"""Who may call the admin API: whoever holds the node's admin token.

Two ways to show it:

- `Authorization: Bearer <token>`, for curl, scripts and `fogbank` subcommands;
- an AWS Signature Version 4 made with access key `fogbank-admin` and the token as the secret
  key, which is what boto3 and the AWS CLI send once configured with those credentials. The
  signature is recomputed with botocore's own signer (botocore comes with aws-sam-translator),
  over exactly the headers the client says it signed, and compared in constant time.

The request's region and service are taken from the credential scope: the signature already
binds them, and a local node has no reason to insist on one region.
"""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Callable, Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ADMIN_ACCESS_KEY = "fogbank-admin"
MAX_SKEW = datetime.timedelta(minutes=15)
"""AWS refuses signatures more than 15 minutes off the server's clock; so does fogbank."""

_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*"
)


class AuthFailure(Exception):
    """The request does not carry the admin token; the message says why, for the log."""


def check(
    token: str,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: Callable[[], datetime.datetime] | None = None,
) -> None:
    """Raise `AuthFailure` unless the request shows `token` (bearer or SigV4).

    `url` is `http://host/raw-path?raw-query` as the client sent it; `headers` are lower-cased.
    """
    given = headers.get("authorization", "")
    scheme, _, rest = given.partition(" ")
    if scheme.lower() == "bearer":
        if not hmac.compare_digest(rest.strip().encode(), token.encode()):
            raise AuthFailure("wrong admin token")
        return
    if scheme == "AWS4-HMAC-SHA256":
        _check_sigv4(token, given, method, url, headers, body, now)
        return
    raise AuthFailure("no admin token (Authorization: Bearer <token>, or a SigV4 signature)")


def _check_sigv4(
    token: str,
    given: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: Callable[[], datetime.datetime] | None,
) -> None:
    parts = _SIGV4.fullmatch(given)
    if parts is None:
        raise AuthFailure("malformed SigV4 Authorization header")
    if parts["key"] != ADMIN_ACCESS_KEY:
        raise AuthFailure(f"unknown access key {parts['key']} (use {ADMIN_ACCESS_KEY})")
    stamp = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        raise AuthFailure("missing or malformed X-Amz-Date") from None
    current = now() if now is not None else datetime.datetime.now(datetime.UTC)
    if abs(current - when) > MAX_SKEW or stamp[:8] != parts["date"]:
        raise AuthFailure("signature expired or dated in the future")
    signed = parts["headers"].split(";")
    if "host" not in signed:
        raise AuthFailure("the signature must cover the Host header")
    request = AWSRequest(
        method=method, url=url, headers={name: headers.get(name, "") for name in signed}, data=body
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(ADMIN_ACCESS_KEY, token), parts["service"], parts["region"])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, parts["signature"]):
        raise AuthFailure("signature does not match (is the secret key the admin token?)")
