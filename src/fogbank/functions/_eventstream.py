"""The `application/vnd.amazon.eventstream` encoder that `InvokeWithResponseStream` answers with.

Each message on the wire is::

    total length (4) | headers length (4) | prelude CRC32 (4) | headers | payload | message CRC32 (4)

all integers big-endian, both checksums plain CRC32 (`zlib.crc32`): the prelude CRC covers the first
eight bytes, the message CRC everything before it. Every header is `name length (1) | name |
type (1) | value`, and Lambda only ever sends string headers (type 7: `value length (2) | value`).

boto3 decodes these with `botocore.eventstream.EventStreamBuffer`; the tests hold this encoder to it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import orjson

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
# Prelude (8) + prelude CRC (4) + message CRC (4): a message with no headers or payload.
_OVERHEAD = _PRELUDE.size + 2 * _CRC.size
_MAX_HEADER_NAME = 255
_MAX_HEADER_VALUE = 32_767
_MAX_HEADERS = 128 * 1024
_MAX_PAYLOAD = 24 * 1024 * 1024


class EventStreamError(ValueError):
    """A message that the event stream format cannot carry (a header or payload too large)."""


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Encode string headers in the order given."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if len(raw_name) > _MAX_HEADER_NAME:
            raise EventStreamError(f"header name too long: {name[:40]!r}...")
        if len(raw_value) > _MAX_HEADER_VALUE:
            raise EventStreamError(f"value of header {name!r} too long ({len(raw_value)} bytes)")
        out.append(len(raw_name))
        out += raw_name
        out.append(_STRING_HEADER)
        out += len(raw_value).to_bytes(2, "big")
        out += raw_value
    if len(out) > _MAX_HEADERS:
        raise EventStreamError(f"headers too large ({len(out)} bytes)")
    return bytes(out)


def _frame(encoded_headers: bytes, payload: bytes) -> bytes:
    # The limits are the decoder's (botocore refuses larger messages), so check them here rather
    # than let a client fail half-way through a stream.
    if len(payload) > _MAX_PAYLOAD:
        raise EventStreamError(f"payload too large ({len(payload)} bytes)")
    prelude = _PRELUDE.pack(_OVERHEAD + len(encoded_headers) + len(payload), len(encoded_headers))
    head = prelude + _CRC.pack(zlib.crc32(prelude))
    crc = zlib.crc32(payload, zlib.crc32(encoded_headers, zlib.crc32(head)))
    return b"".join((head, encoded_headers, payload, _CRC.pack(crc)))


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one event stream message with string headers."""
    return _frame(encode_headers(headers), payload)


# The two events Lambda sends have constant headers: encode them once, not per chunk.
_PAYLOAD_CHUNK_HEADERS = encode_headers(
    {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
)
_INVOKE_COMPLETE_HEADERS = encode_headers(
    {
        ":event-type": "InvokeComplete",
        ":content-type": "application/json",
        ":message-type": "event",
    }
)


def payload_chunk(data: bytes) -> bytes:
    """A `PayloadChunk` event carrying `data` as its raw payload."""
    return _frame(_PAYLOAD_CHUNK_HEADERS, data)


def invoke_complete(
    error_code: str | None = None,
    error_details: str | None = None,
    log_result: str | None = None,
) -> bytes:
    """The `InvokeComplete` event that ends every stream.

    Members that are not set are left out of the JSON document rather than sent as null, so that
    boto3 reports them as absent.
    """
    doc: dict[str, str] = {}
    if error_code is not None:
        doc["ErrorCode"] = error_code
    if error_details is not None:
        doc["ErrorDetails"] = error_details
    if log_result is not None:
        doc["LogResult"] = log_result
    return _frame(_INVOKE_COMPLETE_HEADERS, orjson.dumps(doc))
