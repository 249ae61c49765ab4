import time


def handler(event, context):
    """A fogbank streaming handler: return an iterator; each item is sent as it is produced.

    Through the Function URL (InvokeMode RESPONSE_STREAM) the first item, a dict, sets the HTTP
    status and headers, as Node.js handlers do with `HttpResponseStream.from`.
    """
    params = event.get("queryStringParameters") or {}
    count = int(params.get("count") or event.get("count", 5))

    def chunks():
        if "requestContext" in event:
            yield {"statusCode": 200, "headers": {"content-type": "text/plain"}}
        for i in range(count):
            yield f"line {i + 1} of {count}\n"
            time.sleep(0.2)

    return chunks()
