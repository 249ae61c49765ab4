import base64

from shop import response

PRODUCTS = {
    "1": {"id": "1", "name": "Fog lamp", "price": 24.5},
    "2": {"id": "2", "name": "Bank note", "price": 3.0},
}

# A 1x1 PNG, so the demo can show a binary response without shipping a file.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def handler(event, context):
    params = event.get("pathParameters") or {}
    product_id = params.get("id")
    path = event.get("resource") or event.get("routeKey", "")
    if product_id is None:
        return response(list(PRODUCTS.values()))
    product = PRODUCTS.get(product_id)
    if product is None:
        return response({"message": f"no product {product_id}"}, status=404)
    if path.endswith("/image"):
        return {
            "statusCode": 200,
            "headers": {"content-type": "image/png"},
            "body": base64.b64encode(PIXEL).decode(),
            "isBase64Encoded": True,
        }
    greeting = (event.get("stageVariables") or {}).get("greeting", "Hello")
    return response({**product, "greeting": greeting})
