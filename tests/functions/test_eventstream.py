"""The event stream encoder, held to botocore's own decoder (the one boto3 uses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.model import StructureShape
from botocore.parsers import EventStreamJSONParser

from fogbank.functions._eventstream import (
    EventStreamError,
    encode_message,
    invoke_complete,
    payload_chunk,
)


def decode(data: bytes, piece: int | None = None) -> list[tuple[dict[str, Any], bytes]]:
    """Feed `data` to botocore's buffer (in pieces of `piece` bytes) and collect the messages."""
    buffer = EventStreamBuffer()
    out: list[tuple[dict[str, Any], bytes]] = []
    step = piece or len(data) or 1
    for start in range(0, len(data), step):
        buffer.add_data(data[start : start + step])
        # botocore-stubs declares `headers` as an int; at run time it is a dict.
        out.extend((cast(dict[str, Any], m.headers), m.payload) for m in buffer)
    return out


def test_message_round_trips_through_botocore() -> None:
    data = encode_message({":event-type": "Thing", "x-custom": "välue"}, b"\x00payload\xff")
    assert decode(data) == [({":event-type": "Thing", "x-custom": "välue"}, b"\x00payload\xff")]


def test_empty_message() -> None:
    data = encode_message({}, b"")
    assert len(data) == 16  # prelude, prelude CRC and message CRC only
    assert decode(data) == [({}, b"")]


def test_messages_split_across_reads() -> None:
    data = payload_chunk(b"one") + payload_chunk(b"two") + invoke_complete()
    messages = decode(data, piece=1)
    assert [payload for _, payload in messages] == [b"one", b"two", b"{}"]


def test_checksums_are_real() -> None:
    data = bytearray(payload_chunk(b"hello"))
    data[-6] ^= 0x01  # flip a bit in the payload: the message CRC no longer matches
    with pytest.raises(ChecksumMismatch):
        decode(bytes(data))


def test_payload_chunk_headers() -> None:
    [(headers, payload)] = decode(payload_chunk(b"abc"))
    assert headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert payload == b"abc"


def test_invoke_complete_headers_and_payload() -> None:
    [(headers, payload)] = decode(invoke_complete("Unhandled", '{"errorMessage": "x"}', "TE9H"))
    assert headers == {
        ":event-type": "InvokeComplete",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(payload) == {
        "ErrorCode": "Unhandled",
        "ErrorDetails": '{"errorMessage": "x"}',
        "LogResult": "TE9H",
    }


def test_invoke_complete_leaves_out_unset_members() -> None:
    [(_, payload)] = decode(invoke_complete(log_result="TE9H"))
    assert json.loads(payload) == {"LogResult": "TE9H"}


class _RawStream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Iterator[bytes]:
        # Odd-sized reads, as a socket would deliver them.
        for start in range(0, len(self._data), 7):
            yield self._data[start : start + 7]

    def close(self) -> None:
        pass


def test_lambda_model_parses_the_events() -> None:
    """botocore's Lambda model turns the frames into the events boto3 users iterate."""
    model = botocore.session.get_session().get_service_model("lambda")
    output = model.operation_model("InvokeWithResponseStream").output_shape
    assert output is not None
    shape = output.members["EventStream"]
    assert isinstance(shape, StructureShape)
    data = payload_chunk(b'{"a": ') + payload_chunk(b"1}") + invoke_complete("E", "D", "L")
    events: list[Any] = list(
        EventStream(_RawStream(data), shape, EventStreamJSONParser(), "InvokeWithResponseStream")
    )
    assert events == [
        {"PayloadChunk": {"Payload": b'{"a": '}},
        {"PayloadChunk": {"Payload": b"1}"}},
        {"InvokeComplete": {"ErrorCode": "E", "ErrorDetails": "D", "LogResult": "L"}},
    ]


def test_oversized_header_is_refused() -> None:
    with pytest.raises(EventStreamError):
        encode_message({"n" * 256: "v"}, b"")
    with pytest.raises(EventStreamError):
        encode_message({"n": "v" * 40_000}, b"")
