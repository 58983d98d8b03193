"""Approval tokens: 256 random bits plus signed claims, carried in an approval link.

    token = base64url(claims JSON) "." base64url(HMAC-SHA256(key[kid], claims segment))

The claims bind the token to one thread, one step, one interrupted node, the decisions it may
make, an expiry and the id of the key that signed it (so keys rotate without breaking links
already sent). The server stores only `token_hash(token)`, never the token, so reading the store
does not let anyone decide. Every way a token can be wrong raises the same `LinkNotFound`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durable_graph.api.errors import LinkNotFound
from durable_graph.api.keys import KeyProvider

MAX_TOKEN_CHARS = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class Claims(BaseModel):
    """What a token authorises. Short keys keep links short."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    kid: str = Field(max_length=128)
    tid: str = Field(min_length=1, max_length=200)
    step: int = Field(ge=0)
    node: str = Field(min_length=1, max_length=200)
    dec: tuple[str, ...] = Field(min_length=1, max_length=8)
    exp: int
    sub: str = Field(max_length=200)
    n: str = Field(min_length=43, max_length=43)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, segment: str) -> bytes:
    return hmac.new(key, segment.encode("ascii"), hashlib.sha256).digest()


def token_hash(token: str) -> str:
    """What the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint(
    keys: KeyProvider,
    *,
    thread_id: str,
    step: int,
    node: str,
    decisions: tuple[str, ...],
    expires_at: int,
    subject: str,
) -> tuple[str, Claims]:
    """A new token (with 256 bits from `secrets`) and its claims."""
    key_id, key = keys.current()
    claims = Claims(
        kid=key_id,
        tid=thread_id,
        step=step,
        node=node,
        dec=decisions,
        exp=expires_at,
        sub=subject,
        n=_b64(secrets.token_bytes(32)),
    )
    body = json.dumps(claims.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    segment = _b64(body.encode("utf-8"))
    return f"{segment}.{_b64(_mac(key, segment))}", claims


def open_token(token: str, keys: KeyProvider) -> Claims:
    """Check the signature (constant time) and return the claims; `LinkNotFound` otherwise.

    Expiry is *not* checked here: an expired but genuine token deserves a clearer answer (410)
    than a forged one, and that decision belongs to the caller, after the signature held.
    """
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkNotFound()
    segment, signature = token.split(".")
    try:
        mac = _unb64(signature)
        header = json.loads(_unb64(segment))
        key_id = header.get("kid") if isinstance(header, dict) else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise LinkNotFound() from None
    key = keys.key(key_id) if isinstance(key_id, str) and len(key_id) <= 128 else None
    # Compare even when the key is unknown, so timing does not tell "unknown key" from "bad mac".
    expected = _mac(key or b"\x00" * 32, segment)
    if not hmac.compare_digest(expected, mac) or key is None:
        raise LinkNotFound()
    try:
        return Claims.model_validate(header)
    except ValidationError:
        raise LinkNotFound() from None
