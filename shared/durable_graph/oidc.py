"""Verifying an OpenID Connect token (a Cognito user pool's ID or access token) without boto3.

A token is accepted only when all of these hold, checked in this order, each refusal naming the
check (`TokenRejected.check`):

    form       three base64url parts, a JSON header and payload
    alg        RS256 (a token naming `none` or an HMAC algorithm is refused, never tried)
    key        its `kid` is one of the issuer's published keys (the JWKS; refetched once when a
               `kid` is unknown, so a key rotation needs no restart, at most every `refetch_s`)
    signature  RSASSA-PKCS1-v1_5 with SHA-256 over `header.payload`, by that key
    issuer     `iss` is exactly the pool's issuer URL
    token_use  `id` or `access`, as asked (Cognito's claim; an access token is not an ID token)
    audience   an ID token's `aud` (an access token's `client_id`) is the app client's id
    expiry     `exp` is in the future and `iat` not in it (with `leeway_s` for clock skew)

Example::

    keys = Jwks("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json")
    verifier = TokenVerifier(issuer=..., client_id="3n4...", keys=keys)
    claims = verifier.verify(id_token, now=clock.now())     # or TokenRejected
    claims["sub"], claims.get("email")
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from durable_graph.errors import UserError

TokenUse = Literal["id", "access"]
Fetch = Callable[[str], bytes]
MAX_JWKS_BYTES = 64 * 1024


class TokenRejected(UserError):
    """The token does not prove who the caller is; `check` names the check it failed."""

    code = "token_rejected"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


class JwksUnavailable(UserError):
    """The issuer's keys could not be fetched or read (the token cannot be checked now)."""

    code = "jwks_unavailable"


def http_get(url: str, timeout_s: float = 5.0) -> bytes:
    """GET `url` (https, or http on a test's 127.0.0.1) and return at most MAX_JWKS_BYTES."""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise JwksUnavailable(f"refusing to fetch keys over plain http from {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        data: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise JwksUnavailable(f"the key set at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return data


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(value: str) -> int:
    return int.from_bytes(_b64(value), "big")


@dataclass
class Jwks:
    """The issuer's RSA public keys by `kid`, fetched on first use and kept.

    Attributes:
        url: the JWKS document (`{issuer}/.well-known/jwks.json` for Cognito).
        fetch: how to GET it (tests may pass another transport; the default is `http_get`).
        refetch_s: an unknown `kid` refetches the set at most this often.
    """

    url: str
    fetch: Fetch = http_get
    refetch_s: float = 300.0
    _keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict, init=False, repr=False)
    _fetched_at: float | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def key(self, kid: str) -> rsa.RSAPublicKey | None:
        with self._lock:
            if kid not in self._keys and self._may_refetch():
                self._keys = self._load()
                self._fetched_at = time.monotonic()
            return self._keys.get(kid)

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.refetch_s

    def _load(self) -> dict[str, rsa.RSAPublicKey]:
        try:
            document = json.loads(self.fetch(self.url))
            keys: dict[str, rsa.RSAPublicKey] = {}
            for jwk in document["keys"]:
                if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                    continue
                numbers = rsa.RSAPublicNumbers(e=_int(jwk["e"]), n=_int(jwk["n"]))
                keys[str(jwk["kid"])] = numbers.public_key()
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise JwksUnavailable(f"cannot read the key set at {self.url}: {exc}") from exc
        return keys


@dataclass(frozen=True)
class TokenVerifier:
    """Checks tokens of one issuer for one app client (the table in the module docstring).

    Attributes:
        issuer: the `iss` every token must carry (`https://cognito-idp.REGION.amazonaws.com/POOL`).
        client_id: the app client tokens must be issued to.
        keys: the issuer's published keys.
        leeway_s: tolerated clock skew for `exp` and `iat`.
    """

    issuer: str
    client_id: str
    keys: Jwks
    leeway_s: int = 60

    def verify(self, token: str, *, now: datetime, token_use: TokenUse = "id") -> Mapping[str, Any]:
        header, claims, signed, signature = _parse(token)
        if header.get("alg") != "RS256":
            raise TokenRejected("alg", f"algorithm {header.get('alg')!r} is not RS256")
        key = self.keys.key(str(header.get("kid", "")))
        if key is None:
            raise TokenRejected("key", f"no published key {header.get('kid')!r}")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenRejected("signature", "the signature does not verify") from None
        self._check_claims(claims, now.timestamp(), token_use)
        return claims

    def _check_claims(self, claims: Mapping[str, Any], now: float, token_use: TokenUse) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenRejected("issuer", f"issued by {claims.get('iss')!r}, not this user pool")
        if claims.get("token_use") != token_use:
            raise TokenRejected(
                "token_use", f"a {claims.get('token_use')!r} token, not {token_use}"
            )
        audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.client_id not in audiences:
            raise TokenRejected("audience", "issued to another app client")
        if not claims.get("sub"):
            raise TokenRejected("subject", "the token names no subject")
        expires, issued = claims.get("exp"), claims.get("iat", 0)
        if not isinstance(expires, int | float) or not isinstance(issued, int | float):
            raise TokenRejected("expiry", "exp and iat must be numbers")
        if expires + self.leeway_s <= now:
            raise TokenRejected("expiry", "the token has expired")
        if issued - self.leeway_s > now:
            raise TokenRejected("expiry", "the token was issued in the future")


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 16_384:
        raise TokenRejected("form", "not a signed JWT (header.payload.signature)")
    try:
        header = json.loads(_b64(parts[0]))
        claims = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, binascii.Error):
        raise TokenRejected("form", "a part is not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRejected("form", "header and payload must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


__all__ = ["Jwks", "JwksUnavailable", "TokenRejected", "TokenUse", "TokenVerifier", "http_get"]
