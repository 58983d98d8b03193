"""Who may read and resume threads: an API key locally, IAM on AWS. Each authenticator answers
with an `Identity` (`identity.py`).

On AWS the thread routes use API Gateway's `AWS_IAM` authorisation: an unsigned request never
reaches the function, and the function trusts the caller identity API Gateway puts in the
request context (it still refuses an event without one, in case a route is misconfigured).
"""

from __future__ import annotations

import hmac

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.errors import Unauthorized
from durable_graph.api.identity import Authenticator, Identity

API_KEY_HEADER = "x-api-key"


class ApiKeyAuth:
    """One key in the `x-api-key` header, compared in constant time; its holder is known by
    `name` (what the ledger records as the actor)."""

    def __init__(self, key: str, *, name: str = "api-key") -> None:
        if len(key) < 16:
            raise ValueError("the API key must be at least 16 characters")
        if not name.strip():
            raise ValueError("an API key needs a name")
        self.key = key.encode()
        self.name = name

    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        offered = event.headers.get(API_KEY_HEADER) or ""
        if not hmac.compare_digest(offered.encode("utf-8", "replace"), self.key):
            raise Unauthorized(f"a valid {API_KEY_HEADER} header is required", field=API_KEY_HEADER)
        return Identity(method="api_key", subject=self.name)


class IamAuth:
    """Trust API Gateway's IAM authoriser: the signed caller's ARN is in the request context."""

    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        identity = event.request_context.identity
        principal = identity.user_arn or identity.caller
        if not principal:
            raise Unauthorized("this route requires AWS IAM (SigV4) authorisation")
        return Identity(method="iam", subject=principal)


__all__ = ["API_KEY_HEADER", "ApiKeyAuth", "Authenticator", "IamAuth"]
