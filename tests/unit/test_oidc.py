"""`durable_graph.oidc`: each check of a token, with keys made here (the moto user pool's real
tokens: tests/api/test_signin.py). The key set is served by a counting transport so a refetch
is visible."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from durable_graph.oidc import Jwks, JwksUnavailable, TokenRejected, TokenVerifier

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test"
CLIENT = "client-1"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        "e": _b64(numbers.e.to_bytes(3, "big")),
        "n": _b64(numbers.n.to_bytes(256, "big")),
    }


class KeyServer:
    """Serves a JWKS document and counts fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0

    def add(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def fetch(self, url: str) -> bytes:
        self.fetches += 1
        return json.dumps({"keys": [_jwk(k, v) for k, v in self.keys.items()]}).encode()


def token(key: rsa.RSAPrivateKey, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "sub": "user-1",
        "email": "a@example.test",
        "iat": int(NOW.timestamp()) - 10,
        "exp": int(NOW.timestamp()) + 3600,
        **claims,
    }
    signed = (
        f"{_b64(json.dumps({'alg': alg, 'kid': kid}).encode())}.{_b64(json.dumps(body).encode())}"
    )
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{_b64(signature)}"


def _stranger() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def server() -> KeyServer:
    keys = KeyServer()
    keys.add("k1")
    return keys


def verifier(server: KeyServer, refetch_s: float = 300.0) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER, client_id=CLIENT, keys=Jwks("https://keys", server.fetch, refetch_s)
    )


def test_a_good_id_token_gives_its_claims_and_the_keys_are_fetched_once(server: KeyServer) -> None:
    check = verifier(server)
    for _ in range(3):
        claims = check.verify(token(server.keys["k1"]), now=NOW)
        assert claims["sub"] == "user-1" and claims["email"] == "a@example.test"
    assert server.fetches == 1


def _hs256_with_public_key(server: KeyServer) -> str:
    """The classic confusion: HMAC-signed with the RSA public key's bytes as the secret."""
    pem = (
        server.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(b'{"alg":"HS256","kid":"k1"}')
    body = _b64(json.dumps({"iss": ISSUER, "aud": CLIENT, "token_use": "id", "sub": "x"}).encode())
    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (lambda s: "not-a-jwt", "form"),
        (lambda s: "a.b.c", "form"),
        (_hs256_with_public_key, "alg"),
        (lambda s: token(s.keys["k1"], kid="unknown"), "key"),
        (
            lambda s: token(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "signature",
        ),
        (lambda s: token(s.keys["k1"], iss=ISSUER + "x"), "issuer"),
        (lambda s: token(s.keys["k1"], token_use="access"), "token_use"),
        (lambda s: token(s.keys["k1"], aud="client-2"), "audience"),
        (lambda s: token(s.keys["k1"], sub=""), "subject"),
        (lambda s: token(s.keys["k1"], exp=int(NOW.timestamp()) - 61), "expiry"),
        (lambda s: token(s.keys["k1"], iat=int(NOW.timestamp()) + 120), "expiry"),
        (lambda s: token(s.keys["k1"], exp="tomorrow"), "expiry"),
    ],
)
def test_each_check_refuses_by_name(server: KeyServer, make: Any, check: str) -> None:
    with pytest.raises(TokenRejected) as refused:
        verifier(server).verify(make(server), now=NOW)
    assert refused.value.check == check


def test_an_access_token_is_checked_against_its_client_id(server: KeyServer) -> None:
    access = token(server.keys["k1"], token_use="access", aud=None, client_id=CLIENT)
    assert verifier(server).verify(access, now=NOW, token_use="access")["sub"] == "user-1"
    other = token(server.keys["k1"], token_use="access", client_id="client-2")
    with pytest.raises(TokenRejected, match="audience"):
        verifier(server).verify(other, now=NOW, token_use="access")


def test_a_rotated_key_is_fetched_but_unknown_kids_do_not_hammer_the_issuer(
    server: KeyServer,
) -> None:
    """Given keys fetched once, a token signed by a key published later is accepted after one
    refetch; with a refetch window, unknown kids inside it cost no fetch."""
    check = verifier(server, refetch_s=0)
    check.verify(token(server.keys["k1"]), now=NOW)
    rotated = server.add("k2")
    assert check.verify(token(rotated, kid="k2"), now=NOW)["sub"] == "user-1"
    assert server.fetches == 2

    slow = verifier(server, refetch_s=3600)
    slow.verify(token(server.keys["k1"]), now=NOW)
    for _ in range(5):
        with pytest.raises(TokenRejected, match="key"):
            slow.verify(token(server.keys["k1"], kid="nope"), now=NOW)
    assert server.fetches == 3


def test_an_unreadable_key_set_is_its_own_error() -> None:
    broken = Jwks("https://keys", lambda url: b"<html>")
    check = TokenVerifier(issuer=ISSUER, client_id=CLIENT, keys=broken)
    with pytest.raises(JwksUnavailable, match="cannot read the key set"):
        check.verify(token(_stranger()), now=NOW)
    with pytest.raises(JwksUnavailable, match="plain http"):
        Jwks("http://example.test/jwks.json").key("k1")
