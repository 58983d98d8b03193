"""Who may open the explorer: a person with the session token `serve` printed (a cookie, like a
notebook server), a program with the API key, or on AWS a person signed in to the Cognito user
pool (`OidcAuth`: the ID token from the hosted-UI sign-in's cookie, or a program's
`Authorization: Bearer`, verified here against the pool's keys; `signin.py` makes the cookie).

Approval links are not the explorer's: they keep their own single-use tokens.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.errors import ServiceMisconfigured, Unauthorized
from durable_graph.api.identity import Authenticator, Identity
from durable_graph.api.signin import ID_COOKIE, HostedUi
from durable_graph.clock import Clock
from durable_graph.oidc import JwksUnavailable, TokenRejected, TokenVerifier

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


def session_cookie(
    token: str, *, secure: bool, max_age: int = SESSION_MAX_AGE, path: str = "/"
) -> str:
    """The Set-Cookie value: script cannot read it, no other site's request carries it. Its
    path is the API's root, so the approval pages know who is signed in too (`identify`)."""
    flags = f"; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Strict"
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


class OidcAuth:
    """On AWS: a person signed in to the user pool. The ID token comes from the sign-in cookie
    (a browser) or `Authorization: Bearer` (a program); either way it is verified here, in the
    function (signature against the pool's published keys, issuer, client, `token_use`, expiry:
    `durable_graph.oidc`), so the cookie works where API Gateway's own Cognito authoriser,
    which reads only a header, could not.

    Attributes:
        verifier: the pool's issuer, the app client and its keys.
        hosted_ui: where browsers sign in (`signin.py`).
    """

    kind = "oidc"

    def __init__(self, verifier: TokenVerifier, hosted_ui: HostedUi, clock: Clock) -> None:
        self.verifier = verifier
        self.hosted_ui = hosted_ui
        self.clock = clock

    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        token = _bearer(event) or cookie_value(event, ID_COOKIE)
        if not token:
            raise Unauthorized("sign in first (no session cookie or Authorization: Bearer)")
        return self.identity(token)

    def identity(self, id_token: str) -> Identity:
        """Who the ID token names, once it verifies; `Unauthorized` saying which check failed."""
        try:
            claims = self.verifier.verify(id_token, now=self.clock.now(), token_use="id")
        except TokenRejected as exc:
            raise Unauthorized(f"the ID token is not accepted: {exc}") from None
        except JwksUnavailable as exc:  # not the caller's fault: 503, and no sign-in loop
            raise ServiceMisconfigured(f"the user pool's keys cannot be read: {exc}") from None
        email = claims.get("email")
        return Identity(
            method="oidc",
            subject=str(claims["sub"]),
            email=str(email) if isinstance(email, str) and email else None,
            issuer=self.verifier.issuer,
        )

    def seconds_left(self, id_token: str) -> int:
        """How long a verified token stays valid (what its cookie's Max-Age is)."""
        claims = self.verifier.verify(id_token, now=self.clock.now(), token_use="id")
        return int(claims["exp"] - self.clock.now().timestamp())


def _bearer(event: APIGatewayProxyEvent) -> str:
    header = event.headers.get("authorization") or event.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


__all__ = [
    "SESSION_COOKIE",
    "OidcAuth",
    "SessionAuth",
    "cookie_value",
    "new_session_token",
    "session_cookie",
]
