import json


def handler(event, context):
    # Receives Lambda destination records from OrdersFunction.
    condition = event.get("requestContext", {}).get("condition")
    print(json.dumps({"audit": condition, "payload": event.get("requestPayload")}))
    return {"recorded": condition}
