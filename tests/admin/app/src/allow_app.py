from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """A TOKEN authorizer: `let-me-in` may call anything; any other token is refused."""
    if event.get("authorizationToken") != "let-me-in":
        raise Exception("Unauthorized")
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}
    return {
        "principalId": "tester",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    }
