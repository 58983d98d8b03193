"""Browser sign-in through a user pool's hosted UI: OAuth 2.0 authorization code with PKCE.

A browser cannot attach an `Authorization` header to a link it follows, so on AWS the explorer
(and, for approvals, the API) signs people in the way a web application does:

1. `GET /explorer/login?next=/explorer/threads/t1` -> 302 to the hosted UI's `/oauth2/authorize`
   with a fresh `state` and the S256 `code_challenge` of a fresh `code_verifier`; both are kept
   in a short-lived `HttpOnly` cookie scoped to the callback path (`begin`).
2. The person signs in there (password and TOTP, on the pool's own domain).
3. `GET /explorer/callback?code=&state=` -> the `state` must match the cookie's, the code is
   exchanged at `/oauth2/token` with the verifier (`finish`), the ID token it returns is verified
   like any other (`durable_graph.oidc`), and it becomes the session: an `HttpOnly; Secure;
   SameSite=Lax` cookie over the API's base path, expiring with the token. Lax, so that a link
   followed from a mail (a top-level GET) is signed in; a cross-site POST never carries it.

No client secret (a public client; PKCE binds the code to this browser's verifier), no refresh
token kept: when the ID token expires (1 hour) the next page goes through the hosted UI again,
which signs the person straight back in while its own session lasts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from durable_graph.api.errors import Unauthorized

SIGNIN_COOKIE = "durable_graph_signin"
ID_COOKIE = "durable_graph_id"
SIGNIN_MAX_AGE = 600  # the hosted UI round trip must finish within this
_NEXT = re.compile(r"^/[A-Za-z0-9/._~%?&=+-]{0,500}$")  # a path on this API, never another host

Post = Callable[[str, Mapping[str, str]], tuple[int, bytes]]


def http_post_form(url: str, form: Mapping[str, str], timeout_s: float = 10.0) -> tuple[int, bytes]:
    """POST a form; the status and body, error statuses included."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read(65_536))
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65_536)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def safe_next(value: str | None, default: str = "/explorer") -> str:
    """Where to land after signing in: a path on this API (an open redirect is refused)."""
    if value and _NEXT.match(value) and not value.startswith("//"):
        return value
    return default


@dataclass(frozen=True)
class HostedUi:
    """The user pool's OAuth endpoints and this API's app client.

    Attributes:
        domain_url: the hosted UI's origin (`https://PREFIX.auth.REGION.amazoncognito.com`).
        client_id: the app client (public: no secret; authorization code flow with PKCE).
        base_url: the API's public URL; the callback is `{base_url}/explorer/callback`.
        scopes: what the ID token may say about the person.
        post: how to POST to the token endpoint (the default is `http_post_form`).
    """

    domain_url: str
    client_id: str
    base_url: str
    scopes: str = "openid email"
    post: Post = http_post_form

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/explorer/callback"

    @property
    def cookie_path(self) -> str:
        """The API's base path: the session covers the explorer and the approval pages."""
        return urllib.parse.urlsplit(self.base_url).path.rstrip("/") + "/"

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")

    def begin(self, next_path: str | None) -> tuple[str, str]:
        """The hosted UI URL to send the browser to, and the Set-Cookie that remembers the
        `state` and PKCE verifier of this attempt."""
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scopes,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        remembered = ".".join([state, verifier, _b64(safe_next(next_path).encode())])
        cookie = self._cookie(
            SIGNIN_COOKIE, remembered, SIGNIN_MAX_AGE, f"{self.cookie_path}explorer/callback"
        )
        return f"{self.domain_url}/oauth2/authorize?{query}", cookie

    def finish(self, query: Mapping[str, str], remembered: str) -> tuple[str, str]:
        """The ID token the code is exchanged for (not verified yet: the caller verifies it),
        and where to go next. `Unauthorized` for a refused, forged or replayed callback."""
        if query.get("error"):
            reason = query.get("error_description") or query["error"]
            raise Unauthorized(f"the sign-in was refused: {reason[:200]}", field="error")
        parts = remembered.split(".")
        if len(parts) != 3:
            raise Unauthorized("no sign-in in progress in this browser: start again")
        state, verifier, next_b64 = parts
        if not hmac.compare_digest(query.get("state", "").encode(), state.encode()):
            raise Unauthorized("the sign-in state does not match: start again", field="state")
        code = query.get("code", "")
        if not code:
            raise Unauthorized("the callback carries no code", field="code")
        status, body = self.post(
            f"{self.domain_url}/oauth2/token",
            {
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
        )
        tokens = _json_object(body)
        if status != 200 or not isinstance(tokens.get("id_token"), str):
            reason = tokens.get("error") or f"HTTP {status}"
            raise Unauthorized(f"the code was not exchanged for tokens: {reason}", field="code")
        next_path = base64.urlsafe_b64decode(next_b64 + "=" * (-len(next_b64) % 4)).decode()
        return tokens["id_token"], safe_next(next_path)

    def session_cookie(self, id_token: str, max_age: int) -> str:
        return self._cookie(ID_COOKIE, id_token, max(0, max_age), self.cookie_path)

    def clear(self, name: str) -> str:
        path = self.cookie_path if name == ID_COOKIE else f"{self.cookie_path}explorer/callback"
        return self._cookie(name, "", 0, path)

    def logout_url(self) -> str:
        query = urllib.parse.urlencode(
            {"client_id": self.client_id, "logout_uri": f"{self.base_url}/explorer"}
        )
        return f"{self.domain_url}/logout?{query}"

    def _cookie(self, name: str, value: str, max_age: int, path: str) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{name}={value}; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Lax{secure}"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


__all__ = ["ID_COOKIE", "SIGNIN_COOKIE", "HostedUi", "http_post_form", "safe_next"]
