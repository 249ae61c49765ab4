"""The orders function: prices an order by asking the catalog service, found through discovery.

`fogbank_discovery` comes from fogbank's built-in layer (listed in the template's `Layers`); it
asks the Cloud Map API which catalog instances are healthy and retries an idempotent call once on
another instance when one has just died.
"""

import base64
import json
import uuid

import fogbank_discovery


def handler(event, context):
    try:
        body = event.get("body") or "{}"
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        order = json.loads(body)
        wanted = order["items"]
        if not isinstance(wanted, list) or not wanted:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _reply(400, {"message": 'expected {"items": ["1", "2", ...]}'})
    lines, total = [], 0.0
    for item_id in wanted:
        status, _, body = fogbank_discovery.request(
            "GET", "catalog", "shop.local", f"/items/{item_id}", timeout=5
        )
        item = json.loads(body)
        if status != 200:
            return _reply(400, {"message": f"unknown item {item_id}"})
        lines.append(
            {
                "id": item["id"],
                "name": item["name"],
                "price": item["price"],
                "servedBy": item["servedBy"],
            }
        )
        total += item["price"]
    order_id = str(uuid.uuid4())
    return _reply(201, {"orderId": order_id, "lines": lines, "total": round(total, 2)})


def _reply(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
