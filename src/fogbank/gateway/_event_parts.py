"""The pieces every Lambda proxy event is made of: headers, query, path parameters, body, ids.

Shared by the four event builders in `_events`; each function states the AWS rule it follows.
"""

from __future__ import annotations

import base64
import hashlib
import time
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

from fogbank.gateway._types import HttpRequest

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# HTTP APIs send these as text; measured on AWS: form posts are *not* in the list.
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"})


def binary_type(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """Whether a REST API treats this content type as binary (`image/png`, `image/*`, `*/*`).

    Patterns may carry CloudFormation's `~1` escape for `/`. Only `*/*` matches a missing type.
    """
    if not binary_media_types:
        return False
    media = media_type(content_type)
    for pattern in binary_media_types:
        pattern = pattern.replace("~1", "/").strip().lower()
        if pattern == "*/*" or pattern == media:
            return True
        if media and pattern.endswith("/*") and media.startswith(pattern[:-1]):
            return True
    return False


def text_type(content_type: str | None) -> bool:
    """Whether an HTTP API or Function URL passes a body of this type as text."""
    media = media_type(content_type)
    return (
        media.startswith("text/")
        or media in _TEXT_TYPES
        or media.endswith("+json")
        or media.endswith("+xml")
    )


def clf_time(ms: int) -> str:
    """`09/Apr/2015:12:34:56 +0000`; month names fixed in English (strftime follows the locale)."""
    return _clf_second(ms // 1000)


@lru_cache(maxsize=4)
def _clf_second(second: int) -> str:
    # Every request in the same second shares the text: formatting it is the costly part.
    t = time.gmtime(second)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


@lru_cache(maxsize=4096)
def resource_id(api_id: str, path: str) -> str:
    """A stable 6-character REST resource id, like AWS's `roq9wj`, for one resource path."""
    digest = hashlib.sha256(f"{api_id} {path}".encode()).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:6])


def extended_id_for(request_id: str) -> str:
    """REST's `extendedRequestId` (and `x-amz-apigw-id`): 16 base64 characters, like AWS's."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=10).digest()
    return base64.b64encode(digest).decode("ascii")


@lru_cache(maxsize=2048)
def title_case(name: str) -> str:
    """`x-api-key` -> `X-Api-Key`, the canonical form REST events carry here."""
    return "-".join(part.capitalize() for part in name.split("-"))


def media_type(content_type: str | None) -> str:
    """`Text/HTML; charset=utf-8` -> `text/html`; "" when there is none."""
    return content_type.partition(";")[0].strip().lower() if content_type else ""


@lru_cache(maxsize=1024)
def _template(route_path: str) -> tuple[int, tuple[tuple[int, str, bool], ...]]:
    """Segment count and `(index, name, greedy)` of each parameter of a route path."""
    segments = [seg for seg in route_path.split("/") if seg]
    params = tuple(
        (i, seg[1:-2] if seg.endswith("+}") else seg[1:-1], seg.endswith("+}"))
        for i, seg in enumerate(segments)
        if seg.startswith("{") and seg.endswith("}")
    )
    return len(segments), params


def path_params(
    route_path: str, raw_path: str, fallback: dict[str, str], *, decode: bool
) -> dict[str, str]:
    """Parameter values cut from the raw path, so REST can keep them percent-encoded.

    Segments are split like the router splits them (empty ones dropped); if the path does not
    line up with the route, the router's own (decoded) values are used.
    """
    count, params = _template(route_path)
    if not params:
        return {}
    segments = [seg for seg in raw_path.split("/") if seg]
    greedy = params[-1][2]
    if len(segments) < count or (not greedy and len(segments) != count):
        return dict(fallback)
    out: dict[str, str] = {}
    for i, name, is_greedy in params:
        value = "/".join(segments[i:]) if is_greedy else segments[i]
        out[name] = unquote(value) if decode else value
    return out


def forwarded_headers(request: HttpRequest) -> list[tuple[str, str]]:
    """The client's headers plus the `X-Forwarded-*` trio every AWS front door adds.

    A client's `X-Forwarded-For` is kept and the caller's address appended; port and protocol
    are the gateway's own.
    """
    out: list[tuple[str, str]] = []
    chain = ""
    for name, value in request.headers:
        if name in _FORWARDING:
            if name == "x-forwarded-for":
                chain = f"{chain}, {value}" if chain else value
            continue
        out.append((name, value))
    out.append(("x-forwarded-for", f"{chain}, {request.source_ip}" if chain else request.source_ip))
    out.append(("x-forwarded-port", str(request.port)))
    out.append(("x-forwarded-proto", request.scheme))
    return out


def v1_headers(
    request: HttpRequest, *, canonical: bool, keep_length: bool
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """Payload 1.0's `headers` (last value of each name) and `multiValueHeaders` (all, in order).

    `canonical` gives REST's Title-Case names; `keep_length=False` drops `Content-Length` as REST
    does.
    """
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in forwarded_headers(request):
        if not keep_length and name == "content-length":
            continue  # REST strips it (the body may be re-encoded on the way)
        key = title_case(name) if canonical else name
        single[key] = value  # the last value wins, as in API Gateway's own events
        values = multi.get(key)
        if values is None:
            multi[key] = [value]
        else:
            values.append(value)
    return single or None, multi or None


def v1_query(raw: bytes) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """Payload 1.0's decoded query maps (last value / all values), null when there is no query."""
    if not raw:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single or None, multi or None


def v2_headers(request: HttpRequest, *, keep_cookie: bool) -> tuple[dict[str, str], list[str]]:
    """Payload 2.0's `headers` (repeats comma-joined) and `cookies` (one entry per cookie).

    HTTP APIs move the `cookie` header into `cookies`; Function URLs keep it too (`keep_cookie`).
    """
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in forwarded_headers(request):
        separator = ","
        if name == "cookie":
            # Split on ";" and trim, so `a=1;b=2` gives two cookies just as `a=1; b=2` does.
            cookies.extend(part for part in (c.strip() for c in value.split(";")) if part)
            if not keep_cookie:
                continue
            separator = "; "  # a comma would merge two cookies into one
        prior = headers.get(name)
        headers[name] = value if prior is None else f"{prior}{separator}{value}"
    return headers, cookies


def v2_query(raw_query: str) -> dict[str, str]:
    """Payload 2.0's decoded `queryStringParameters`, repeats comma-joined (`a=1&a=2` -> `1,2`)."""
    joined: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        prior = joined.get(key)
        joined[key] = value if prior is None else f"{prior},{value}"
    return joined


def encode_body(body: bytes, binary: bool) -> tuple[str | None, bool]:
    """`(body, isBase64Encoded)`: None for no body, text when allowed and valid UTF-8, else base64."""
    if not body:
        return None, False
    if not binary:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass  # base64 keeps every byte; the flag tells the handler to decode it
    return base64.b64encode(body).decode("ascii"), True
