import json
import os
from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = {
        "route": event.get("routeKey") or f"{event.get('httpMethod')} {event.get('resource')}",
        "stage": event["requestContext"].get("stage"),
        "stageVariables": event.get("stageVariables"),
        "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
    }
    return {"statusCode": 200, "body": json.dumps(body)}
