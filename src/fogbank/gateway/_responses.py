"""Lambda proxy results turned into HTTP responses, as API Gateway and Function URLs read them.

Payload 1.0 (REST, and HTTP APIs asking for 1.0) is strict: one JSON object with `statusCode`
and only the five documented keys, else the gateway answers 502 / 500. Payload 2.0 (HTTP APIs,
Function URLs) is lenient: any JSON without `statusCode` becomes a 200 `application/json` body.

AWS's scalar coercion is reproduced where it is documented or measured: `"statusCode": "201"`
works, header values that are numbers or booleans are sent as their JSON text (`1`, `true`),
`"isBase64Encoded": "true"` counts as true. A header whose value is null is left out, and a null
`Content-Type` keeps the gateway from adding its default (the .NET Lambda library relies on it).

Known differences: a REST API returns `isBase64Encoded` bodies as binary only when the request's
`Accept` header matches its `binaryMediaTypes` (else the base64 text itself); fogbank always
decodes. In 2.0, keys other than the documented ones are ignored, and a non-string `body` is sent
as its JSON text rather than rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import orjson

from fogbank.gateway._errors import BadProxyOutput
from fogbank.gateway._types import HttpResponse
from fogbank.model import ApiKind

REST_DEFAULT_CONTENT_TYPE = "application/json"
"""What a REST API adds when the function names no `Content-Type`, body or not."""
HTTP_DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
"""What an HTTP API adds when the function names no `Content-Type` for a non-empty body."""
INFERRED_CONTENT_TYPE = "application/json"
"""The type of a 2.0 result without `statusCode`, sent as the body."""

_V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_WHITESPACE = re.compile(rb"\s+")


def rest_response(payload: bytes, *, kind: ApiKind = ApiKind.REST) -> HttpResponse:
    """The response for a payload 1.0 result; raises `BadProxyOutput` where AWS answers 502.

    `kind` selects the default `Content-Type` (REST: `application/json`; HTTP API:
    `text/plain; charset=utf-8`). Header names come out lower-cased; a name given in both
    `headers` and `multiValueHeaders` gets the multi-value list plus the single value if it is
    not already in it (AWS: "only the values from multiValueHeaders" for a repeated pair).
    """
    result = _load(payload)
    if not isinstance(result, dict):
        raise BadProxyOutput(f"the result is a JSON {_kind_of(result)}, not an object")
    unknown = result.keys() - _V1_KEYS
    if unknown:
        raise BadProxyOutput(f"unknown key(s) in the proxy result: {', '.join(sorted(unknown))}")
    if "statusCode" not in result:
        raise BadProxyOutput("the proxy result has no statusCode")
    status = _status(result["statusCode"])
    values, declared = _header_values(result.get("headers"), result.get("multiValueHeaders"))
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        # REST answers "Malformed Lambda proxy response" for `"body": {...}`: it must be text.
        raise BadProxyOutput(f"body must be a string, not a JSON {_kind_of(body)}")
    data = _body_bytes(body, _flag(result.get("isBase64Encoded")))
    default = REST_DEFAULT_CONTENT_TYPE if kind is ApiKind.REST else HTTP_DEFAULT_CONTENT_TYPE
    if "content-type" not in declared and (kind is ApiKind.REST or data):
        values["content-type"] = [default]
    return HttpResponse(status=status, headers=_flatten(values), body=data)


def http_response(payload: bytes) -> HttpResponse:
    """The response for a payload 2.0 result (HTTP APIs, Function URLs).

    A JSON object with `statusCode` is read as `{statusCode, headers, cookies, body,
    isBase64Encoded}`, each cookie becoming one `set-cookie` header. Any other valid JSON is the
    body of a 200 `application/json` response: a JSON string gives its text (AWS's documented
    `"Hello from Lambda!"` -> `Hello from Lambda!`), anything else the JSON exactly as returned.
    Invalid JSON raises `BadProxyOutput`.
    """
    result = _load(payload)
    if isinstance(result, dict) and "statusCode" in result:
        return _structured_v2(result)
    body = _utf8(result) if isinstance(result, str) else payload
    return HttpResponse(status=200, headers=[("content-type", INFERRED_CONTENT_TYPE)], body=body)


def _structured_v2(result: dict[str, Any]) -> HttpResponse:
    status = _status(result["statusCode"])
    # 2.0 has no multiValueHeaders: AWS's schema leaves it out, so it is ignored like other keys.
    values, declared = _header_values(result.get("headers"), None)
    body = result.get("body")
    encoded = _flag(result.get("isBase64Encoded"))
    if body is not None and not isinstance(body, str):
        if encoded:
            raise BadProxyOutput("isBase64Encoded is true but body is not a string")
        body = orjson.dumps(body).decode()
    data = _body_bytes(body, encoded)
    if "content-type" not in declared and data:
        values["content-type"] = [HTTP_DEFAULT_CONTENT_TYPE]
    headers = _flatten(values)
    cookies = result.get("cookies")
    if cookies is not None:
        if not isinstance(cookies, list):
            raise BadProxyOutput(f"cookies must be a list, not a JSON {_kind_of(cookies)}")
        for cookie in cookies:
            if not isinstance(cookie, str):
                raise BadProxyOutput("every entry of cookies must be a string")
            headers.append(("set-cookie", _header_value(cookie, "set-cookie")))
    return HttpResponse(status=status, headers=headers, body=data)


def _load(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    try:
        # orjson refuses integers past 64 bits and lone surrogates, which AWS passes through.
        return json.loads(payload)
    except ValueError as exc:
        raise BadProxyOutput(f"the result is not valid JSON: {exc}") from exc


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # "replace": a lone surrogate cannot be sent


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _status(value: Any) -> int:
    """An HTTP status from `statusCode`: a number, or a string of digits (AWS accepts `"201"`)."""
    code: int | None = None
    if isinstance(value, bool):
        code = None  # JSON true is not 1 here
    elif isinstance(value, int):
        code = value
    elif isinstance(value, float) and value.is_integer():
        code = int(value)  # 200.0, as some serializers write it
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        code = int(value)
    if code is None:
        raise BadProxyOutput(f"statusCode {value!r} is not a number")
    if not 100 <= code <= 599:
        raise BadProxyOutput(f"statusCode {code} is not an HTTP status")
    return code


def _flag(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadProxyOutput(f"isBase64Encoded {value!r} is not a boolean")


def _body_bytes(body: str | None, encoded: bool) -> bytes:
    if not body:
        return b""
    if not encoded:
        return _utf8(body)
    try:
        # Line breaks are tolerated (base64.encodebytes writes them); anything else is strict.
        return base64.b64decode(_WHITESPACE.sub(b"", _utf8(body)), validate=True)
    except binascii.Error as exc:
        raise BadProxyOutput(f"isBase64Encoded is true but body is not base64: {exc}") from exc


def _header_values(headers: Any, multi: Any) -> tuple[dict[str, list[str]], set[str]]:
    """Header values by lower-case name, and every name the function mentioned (null or not)."""
    values: dict[str, list[str]] = {}
    declared: set[str] = set()
    if headers is not None:
        if not isinstance(headers, dict):
            raise BadProxyOutput(f"headers must be an object, not a JSON {_kind_of(headers)}")
        for name, value in headers.items():
            key = _header_name(name)
            declared.add(key)
            if value is not None:
                values.setdefault(key, []).append(_header_value(value, name))
    if multi is not None:
        if not isinstance(multi, dict):
            raise BadProxyOutput(
                f"multiValueHeaders must be an object, not a JSON {_kind_of(multi)}"
            )
        for name, items in multi.items():
            key = _header_name(name)
            declared.add(key)
            if items is None:
                continue
            if not isinstance(items, list):
                raise BadProxyOutput(f"multiValueHeaders[{name!r}] must be a list")
            merged = [_header_value(item, name) for item in items if item is not None]
            merged.extend(v for v in values.get(key, ()) if v not in merged)
            values[key] = merged
    return values, declared


def _header_name(name: str) -> str:
    if not _TOKEN.fullmatch(name):
        raise BadProxyOutput(f"{name!r} is not a valid header name")
    return name.lower()


def _header_value(value: Any, name: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = orjson.dumps(value).decode()  # true, 1, 1.5: the JSON text, as AWS sends it
    else:
        raise BadProxyOutput(f"header {name!r} has a JSON {_kind_of(value)} value")
    if "\r" in text or "\n" in text or "\0" in text:
        raise BadProxyOutput(f"header {name!r} has a line break in its value")
    # Non-ASCII goes out as its UTF-8 bytes; the ASGI layer writes header strings as latin-1.
    return text if text.isascii() else _utf8(text).decode("latin-1")


def _flatten(values: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, items in values.items() for value in items]
