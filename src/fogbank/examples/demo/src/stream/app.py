import time


def handler(event, context):
    """A fogbank streaming handler: return an iterator; each item is sent as it is produced."""
    count = int((event or {}).get("count", 5))

    def chunks():
        for i in range(count):
            yield f"line {i + 1} of {count}\n"
            time.sleep(0.2)

    return chunks()
