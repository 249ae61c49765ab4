"""Function URLs (`AWS::Lambda::Url`, which SAM makes of `FunctionUrlConfig`).

A URL's host label is its id: `<url_id>.lambda-url.<region>.on.aws` on AWS. AWS draws the id at
random; fogbank derives it from the function's name, so that a URL stays the same across
restarts and machines, and keeps AWS's shape (32 lower-case letters and digits).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Set
from typing import Any

from fogbank.model._api import FunctionUrl
from fogbank.model._integrations import FUNCTION_ARN, Where, read_cors

FUNCTION_URL = "AWS::Lambda::Url"
AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")


def url_id_for(function_name: str) -> str:
    """A stable 32-character URL id (lower-case letters and digits, as AWS's) for a function."""
    digest = hashlib.sha256(function_name.encode()).digest()
    return base64.b32encode(digest[:20]).decode().lower()  # 20 bytes: 32 characters, no padding


def build_function_urls(
    resources: Mapping[str, Mapping[str, Any]],
    *,
    functions: Mapping[str, str],
    runnable: Set[str],
    file: str,
) -> tuple[list[FunctionUrl], list[str]]:
    """The Function URLs of the functions the app runs, and warnings.

    `functions` maps each name a template function answers to (name, logical id) to its name;
    URLs of other functions are skipped without a word: the function loader warns about those.
    """
    urls: dict[str, FunctionUrl] = {}
    warnings: list[str] = []
    for logical_id, resource in resources.items():
        if resource["Type"] != FUNCTION_URL:
            continue
        props, where = resource["Properties"], Where(file, logical_id)
        target = where.at("TargetFunctionArn").text(props.get("TargetFunctionArn"))
        arn = FUNCTION_ARN.fullmatch(target)
        name, _, qualifier = (arn["ref"] if arn else target).partition(":")
        function = functions.get(name)
        if function is None or function not in runnable:
            continue
        auth_at, mode_at = where.at("AuthType"), where.at("InvokeMode")
        auth = auth_at.text(props.get("AuthType"), default="").upper()
        if auth not in AUTH_TYPES:
            raise auth_at.error(f"expected NONE or AWS_IAM, got {auth or 'nothing'}")
        mode = mode_at.text(props.get("InvokeMode"), default="BUFFERED").upper()
        if mode not in INVOKE_MODES:
            raise mode_at.error(f"expected BUFFERED or RESPONSE_STREAM, got {mode}")
        if props.get("Qualifier") is not None:
            qualifier = where.at("Qualifier").text(props["Qualifier"])
        if function in urls:
            # The app model keys URLs by function; AWS allows one per alias as well.
            warnings.append(
                f"{logical_id}: function {function} already has a URL;"
                " fogbank serves one URL per function"
            )
            continue
        cors = props.get("Cors")
        urls[function] = FunctionUrl(
            function_name=function,
            url_id=url_id_for(function),
            qualifier=qualifier or None,
            auth_type=auth,
            invoke_mode=mode,
            cors=None if cors is None else read_cors(cors, where.at("Cors"), capitalized=True),
        )
    return list(urls.values()), warnings
