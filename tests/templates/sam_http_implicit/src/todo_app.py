from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"id": (event.get("pathParameters") or {}).get("id")}


def catch_all(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 404, "body": event.get("rawPath", "")}
