import json
from typing import Any


def list_orders(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps([])}


def get_order(event: dict[str, Any], context: object) -> dict[str, Any]:
    order_id = event["pathParameters"]["orderId"]
    return {"statusCode": 200, "body": json.dumps({"id": order_id})}


def fallback(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 404, "body": json.dumps({"path": event["path"]})}
