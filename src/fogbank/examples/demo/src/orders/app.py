import json
import logging
import uuid

from shop import response

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def place(items, version):
    if not items:
        raise ValueError("an order needs at least one item")
    order_id = str(uuid.uuid4())
    logger.info("order %s with %d items", order_id, len(items))
    return {"orderId": order_id, "items": items, "version": version}


def handler(event, context):
    if "requestContext" in event:
        # Called through API Gateway: the order is the JSON body.
        try:
            body = json.loads(event.get("body") or "{}")
            return response(place(body.get("items"), context.function_version), status=201)
        except (ValueError, AttributeError) as exc:
            return response({"message": str(exc)}, status=400)
    # Called directly (Invoke API, async invocations with destinations).
    return place(event.get("items"), context.function_version)
