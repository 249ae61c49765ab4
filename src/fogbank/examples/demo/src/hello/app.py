from shop import greeting


def handler(event, context):
    # Through the HTTP API the name is a path parameter; invoked directly it is in the event.
    name = (event.get("pathParameters") or {}).get("name") or event.get("name", "world")
    return {"message": greeting(name), "requestId": context.aws_request_id}
