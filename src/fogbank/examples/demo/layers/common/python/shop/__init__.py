"""Code shared by the demo's functions through the `shop-common` layer."""

import json
import os


def greeting(name: str) -> str:
    return f"Hello, {name}! (stage {os.environ.get('STAGE', '?')})"


def response(body: object, status: int = 200) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
