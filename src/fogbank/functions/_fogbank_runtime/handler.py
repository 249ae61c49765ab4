"""Load a Python handler and run it with the official runtime's error types and messages."""

from __future__ import annotations

import decimal
import importlib
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

Handler = Callable[[Any, Any], Any]

RUNTIME_FILE_MARK = os.sep + "_fogbank_runtime" + os.sep
ERROR_LOG_INDENT = "\u00a0"


class Fault(Exception):
    """An error the runtime reports under one of Lambda's `Runtime.*` error types."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def load_handler(spec: str) -> Handler:
    """Import `module.function` (or `dir/module.function`); this is the init phase."""
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    handler = getattr(module, fname, None)
    if handler is None:
        # As on AWS, a missing attribute is not an init failure: every invocation reports it.
        fault = Fault("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'")

        def missing(event: Any, context: Any) -> Any:
            raise fault

        return missing
    return handler  # type: ignore[no-any-return]


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return math.nan
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ENSURE_ASCII = sys.version_info < (3, 12)


# One encoder for every result: `json.dumps` with any option builds a new one per call.
_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=_ENSURE_ASCII, allow_nan=True)


def to_json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def marshal(result: Any) -> bytes:
    if isinstance(result, bytes):
        return result
    try:
        return to_json(result)
    except Exception as exc:  # any encoder failure is the user's MarshalError, as on AWS
        raise Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def is_stream(result: Any) -> bool:
    """A handler streams by returning an iterator (sync or async) instead of a value."""
    if isinstance(result, (str, bytes, bytearray, dict, list, tuple)):
        return False
    return hasattr(result, "__next__") or hasattr(result, "__anext__")


def chunk_bytes(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode()
    return marshal(item)


PRELUDE_DELIMITER = b"\0" * 8


def _first_chunk(item: Any) -> bytes:
    # A dict yielded first is the HTTP prelude ({statusCode, headers, cookies}), sent with the
    # same 8-NUL delimiter Lambda's Node.js HttpResponseStream uses, so gateways split it off.
    if isinstance(item, dict):
        return to_json(item) + PRELUDE_DELIMITER
    return chunk_bytes(item)


def iterate(result: Any) -> Iterator[bytes]:
    first = True
    if hasattr(result, "__anext__"):
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            while True:
                try:
                    item = loop.run_until_complete(result.__anext__())
                except StopAsyncIteration:
                    return
                yield _first_chunk(item) if first else chunk_bytes(item)
                first = False
        finally:
            loop.close()
    else:
        for item in result:
            yield _first_chunk(item) if first else chunk_bytes(item)
            first = False


def error_document(exc: BaseException, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """The `{errorMessage, errorType, requestId, stackTrace}` document for a failure."""
    if isinstance(exc, Fault):
        error_type, message, trace = exc.error_type, exc.message, exc.trace
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        # Hide the runtime's own frames, as the official client does.
        while frames and RUNTIME_FILE_MARK in frames[0].filename:
            frames = traceback.StackSummary.from_list(frames[1:])
        error_type, message, trace = type(exc).__name__, str(exc), traceback.format_list(frames)
    doc: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if request_id is not None:
        doc["requestId"] = request_id
    doc["stackTrace"] = trace
    return error_type, doc


def error_log_text(doc: dict[str, Any]) -> str:
    """The `[ERROR] Type: message` block the official runtime writes to the log."""
    lines = [f"[ERROR] {doc['errorType']}: {doc['errorMessage']}"]
    trace = doc.get("stackTrace")
    if trace:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            for line in str(element).splitlines():
                stripped = line.lstrip(" ")
                lines.append(ERROR_LOG_INDENT * (len(line) - len(stripped)) + stripped)
    return "\r".join(lines) + "\n"
