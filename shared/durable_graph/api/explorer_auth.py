"""Who may open the explorer: a person with the session token `serve` printed (a cookie, like a
notebook server), a program with the API key, or on AWS a Cognito user (API Gateway's Cognito
authoriser checked the ID token before the function runs; the function reads its claims).

Approval links are not the explorer's: they keep their own single-use tokens.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.errors import Unauthorized
from durable_graph.api.identity import Authenticator, Identity

SESSION_COOKIE = "durable_graph_explorer"
SESSION_MAX_AGE = 12 * 3600


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def cookie_value(event: APIGatewayProxyEvent, name: str = SESSION_COOKIE) -> str:
    header = event.headers.get("cookie") or event.headers.get("Cookie") or ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def session_cookie(token: str, *, secure: bool, max_age: int = SESSION_MAX_AGE) -> str:
    """The Set-Cookie value: script cannot read it, no other site's request carries it."""
    flags = f"; Max-Age={max_age}; Path=/explorer; HttpOnly; SameSite=Strict"
    return f"{SESSION_COOKIE}={token}{flags}{'; Secure' if secure else ''}"


class SessionAuth:
    """Locally: the session cookie `serve` sets from its printed token, or the API key."""

    kind = "session"

    def __init__(self, token: str, programs: Authenticator) -> None:
        if len(token) < 16:
            raise ValueError("the explorer session token must be at least 16 characters")
        self.token = token
        self.programs = programs

    def accepts(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self.token.encode())

    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        if self.accepts(cookie_value(event)):
            return Identity(method="session", subject="explorer session")
        return self.programs.authenticate(event)


class CognitoAuth:
    """On AWS: API Gateway's Cognito user pool authoriser put the ID token's claims in the
    request context; an event without them (a misconfigured route) is refused."""

    kind = "cognito"

    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        claims: dict[str, Any] = event.request_context.authorizer.claims
        if not claims.get("sub"):
            raise Unauthorized("this route requires a Cognito user (Authorization: ID token)")
        email = claims.get("email")
        return Identity(
            method="oidc",
            subject=str(claims["sub"]),
            email=str(email) if email else None,
            issuer=str(claims["iss"]) if claims.get("iss") else None,
        )


__all__ = [
    "SESSION_COOKIE",
    "CognitoAuth",
    "SessionAuth",
    "cookie_value",
    "new_session_token",
    "session_cookie",
]
