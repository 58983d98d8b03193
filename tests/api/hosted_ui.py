"""A stand-in for the two endpoints of Cognito's hosted UI that moto does not serve.

moto's cognito-idp issues real RS256 tokens and serves the pool's JWKS, but has no hosted UI
(`/oauth2/authorize`, `/oauth2/token`). This serves those two on 127.0.0.1, the way Cognito
does for a public app client with PKCE, and gets its tokens from moto:

- `GET /oauth2/authorize`: "signs in" the configured user (moto's AdminInitiateAuth: no
  browser form to fill) and redirects to `redirect_uri` with a one-time code and the `state`.
- `POST /oauth2/token`: exchanges a code once, for the client and redirect URI it was issued to,
  when `code_verifier` hashes (S256) to the `code_challenge` sent to `authorize`; anything
  else is a 400 `invalid_grant`, as Cognito answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.local_http import in_background


@dataclass
class HostedUiStandIn:
    cognito: Any  # a boto3 cognito-idp client on the moto server
    pool_id: str
    client_id: str
    username: str
    password: str
    url: str = ""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    exchanged: list[str] = field(default_factory=list)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, b"unknown client or response type"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}, b"PKCE (S256) is required"
        tokens = self.cognito.admin_initiate_auth(
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": self.username, "PASSWORD": self.password},
        )["AuthenticationResult"]
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"tokens": tokens, **query}
        back = urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": f"{query['redirect_uri']}?{back}"}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != grant["client_id"]
            or form.get("redirect_uri") != grant["redirect_uri"]
            or challenge.decode().rstrip("=") != grant["code_challenge"]
        ):
            return 400, {"Content-Type": "application/json"}, b'{"error":"invalid_grant"}'
        self.exchanged.append(form["code"])
        tokens = grant["tokens"]
        body = {
            "id_token": tokens["IdToken"],
            "access_token": tokens["AccessToken"],
            "expires_in": tokens["ExpiresIn"],
            "token_type": "Bearer",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@contextmanager
def serving(stand_in: HostedUiStandIn) -> Iterator[HostedUiStandIn]:
    """Serve `stand_in` on a free port of 127.0.0.1; its `url` is set while serving."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, reply: tuple[int, dict[str, str], bytes]) -> None:
            status, headers, body = reply
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/oauth2/authorize":
                return self._reply((404, {}, b""))
            return self._reply(stand_in.authorize(dict(parse_qsl(url.query))))

        def do_POST(self) -> None:
            if self.path != "/oauth2/token":
                return self._reply((404, {}, b""))
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            return self._reply(stand_in.token(dict(parse_qsl(raw.decode()))))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        stand_in.url = url
        yield stand_in
