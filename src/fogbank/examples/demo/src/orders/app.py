import logging
import uuid

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    items = event.get("items")
    if not items:
        raise ValueError("an order needs at least one item")
    order_id = str(uuid.uuid4())
    logger.info("order %s with %d items", order_id, len(items))
    return {"orderId": order_id, "items": items, "version": context.function_version}
