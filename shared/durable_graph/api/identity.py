"""Who is calling: the one answer every authenticator gives and every route reads.

An `Authenticator` (`auth.py`, `explorer_auth.py`) turns a request into an `Identity` or raises
`Unauthorized`. The API's sign-in middlewares store it on the resolver, and a route reads it
with `caller(app)`; what the ledger records is `identity.actor`.

    method    who                                      subject              email
    session   the person holding the token `serve`     "explorer session"   -
              printed (locally)
    api_key   a program sending a named API key        the key's name       -
    iam       an AWS principal that signed (SigV4)     its ARN              -
    oidc      a person signed in with OpenID Connect   the ID token's sub   the token's email
              (the Cognito user pool on AWS)

`person` is true for `session` and `oidc`: a route that must know a human acted (deciding an
approval with sign-in required) checks it. Two identities are the same caller when their `key`s
are equal (method, issuer, subject; never the email, which a user may change).

A route that is public but wants to know who is signed in, if anyone (an approval link's page),
calls `identify(auth, event)`: the identity, or None, never an error.

Example::

    @app.post("/threads/<thread_id>/resume", middlewares=[authenticated])
    def resume_thread(thread_id: str) -> Response[str]:
        who = caller(app)                    # Identity(method="iam", subject="arn:...")
        api.threads.resume(thread_id, request, who.actor)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.errors import Unauthorized
from durable_graph.checkpoint import Actor

Method = Literal["session", "api_key", "iam", "oidc"]
CONTEXT_KEY = "identity"  # where the middlewares keep it in `app.context`
_MAX_ID = 200  # an actor id longer than this is cut (records stay small)


@dataclass(frozen=True)
class Identity:
    """An authenticated caller.

    Attributes:
        method: how it proved who it is (table above).
        subject: the stable name within that method: the key's name, the IAM ARN, the OIDC `sub`.
        email: an OIDC user's verified email, when the token carries one.
        issuer: the OIDC issuer URL (which user pool vouches for `subject`).
    """

    method: Method
    subject: str
    email: str | None = None
    issuer: str | None = None

    @property
    def person(self) -> bool:
        """A human signed in (not a program's key or an AWS principal)."""
        return self.method in ("session", "oidc")

    @property
    def key(self) -> str:
        """Equal for the same caller, different for different ones."""
        return f"{self.method}:{self.issuer or ''}:{self.subject}"

    @property
    def actor(self) -> Actor:
        """What the ledger records as the step's actor: a signed-in user by email (or `sub`)."""
        if self.method == "oidc":
            return Actor(kind="human", id=f"oidc:{self.email or self.subject}"[:_MAX_ID])
        if self.method == "session":
            return Actor(kind="human", id=self.subject[:_MAX_ID])
        return Actor(kind="api", id=self.subject[:_MAX_ID])


class Authenticator(Protocol):
    def authenticate(self, event: APIGatewayProxyEvent) -> Identity:
        """The calling identity, or `Unauthorized` saying what is missing."""
        ...


def caller(app: APIGatewayRestResolver) -> Identity:
    """The identity a sign-in middleware stored for the current request.

    Only routes behind a sign-in middleware may call this; elsewhere it is a bug (KeyError)."""
    identity: Identity = app.context[CONTEXT_KEY]
    return identity


def identify(auth: Authenticator | None, event: APIGatewayProxyEvent) -> Identity | None:
    """Who is signed in on a public route, if anyone: never raises `Unauthorized`."""
    if auth is None:
        return None
    try:
        return auth.authenticate(event)
    except Unauthorized:
        return None


__all__ = ["CONTEXT_KEY", "Authenticator", "Identity", "Method", "caller", "identify"]
