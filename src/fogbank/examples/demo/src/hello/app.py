from shop import greeting


def handler(event, context):
    name = (event or {}).get("name", "world")
    return {"message": greeting(name), "requestId": context.aws_request_id}
