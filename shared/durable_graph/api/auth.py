"""Who may read and resume threads: an API key locally, IAM on AWS.

On AWS the thread routes use API Gateway's `AWS_IAM` authorisation: an unsigned request never
reaches the function, and the function trusts the caller identity API Gateway puts in the
request context (it still refuses an event without one, in case a route is misconfigured).
"""

from __future__ import annotations

import hmac
from typing import Protocol

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.errors import Unauthorized
from durable_graph.checkpoint import Actor

API_KEY_HEADER = "x-api-key"


class Authenticator(Protocol):
    def authenticate(self, event: APIGatewayProxyEvent) -> Actor:
        """The calling principal, or `Unauthorized`."""
        ...


class ApiKeyAuth:
    """One shared key in the `x-api-key` header, compared in constant time."""

    def __init__(self, key: str) -> None:
        if len(key) < 16:
            raise ValueError("the API key must be at least 16 characters")
        self.key = key.encode()

    def authenticate(self, event: APIGatewayProxyEvent) -> Actor:
        offered = event.headers.get(API_KEY_HEADER) or ""
        if not hmac.compare_digest(offered.encode("utf-8", "replace"), self.key):
            raise Unauthorized(f"a valid {API_KEY_HEADER} header is required", field=API_KEY_HEADER)
        return Actor(kind="api", id="api-key")


class IamAuth:
    """Trust API Gateway's IAM authoriser: the signed caller's ARN is in the request context."""

    def authenticate(self, event: APIGatewayProxyEvent) -> Actor:
        identity = event.request_context.identity
        principal = identity.user_arn or identity.caller
        if not principal:
            raise Unauthorized("this route requires AWS IAM (SigV4) authorisation")
        return Actor(kind="api", id=principal[:200])
