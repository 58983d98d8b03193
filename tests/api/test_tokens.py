"""Approval tokens: what is signed, what any alteration does, and key rotation by key id."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from durable_graph.api.errors import LinkNotFound
from durable_graph.api.keys import LocalKeyFile
from durable_graph.api.tokens import Claims, mint, open_token, token_hash


def issue(keys: LocalKeyFile) -> tuple[str, Claims]:
    return mint(
        keys,
        thread_id="t-1",
        step=3,
        node="human_review",
        decisions=("approve", "reject"),
        expires_at=2_000_000_000,
        subject="cfo",
    )


def test_token_carries_signed_claims_and_256_random_bits(tmp_path: Path) -> None:
    """Given a key file
    When a token is minted
    Then it opens to the same claims (thread, step, node, decisions, expiry, key id) and holds
    a 32-byte nonce; two tokens for the same claims differ."""
    keys = LocalKeyFile(tmp_path / "keys" / "signing.json")
    token, claims = issue(keys)
    assert open_token(token, keys) == claims
    assert (claims.tid, claims.step, claims.node, claims.dec) == (
        "t-1",
        3,
        "human_review",
        ("approve", "reject"),
    )
    assert claims.kid == keys.current()[0]
    assert len(base64.urlsafe_b64decode(claims.n + "=")) == 32
    assert issue(keys)[0] != token
    assert len(token_hash(token)) == 64 and token not in token_hash(token)


def test_key_file_is_private(tmp_path: Path) -> None:
    """Given a new key file
    When it is created
    Then only its owner can read it (0600) in a 0700 folder."""
    keys = LocalKeyFile(tmp_path / "keys" / "signing.json")
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.path.parent.stat().st_mode) == 0o700


def test_changed_claims_do_not_open(tmp_path: Path) -> None:
    """Given a token
    When its claims are re-encoded with another step (the signature kept)
    Then it does not open."""
    keys = LocalKeyFile(tmp_path / "signing.json")
    token, claims = issue(keys)
    forged_claims = claims.model_copy(update={"step": 4}).model_dump(mode="json")
    segment = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    with pytest.raises(LinkNotFound):
        open_token(f"{segment}.{token.split('.')[1]}", keys)


def test_rotation_keeps_old_links_until_their_key_is_retired(tmp_path: Path) -> None:
    """Given a token signed with key 1
    When the key is rotated, and later key 1 is retired
    Then new tokens use key 2, the old token still opens after the rotation, and no longer
    opens once key 1 is retired."""
    keys = LocalKeyFile(tmp_path / "signing.json")
    old_token, old_claims = issue(keys)
    second = keys.rotate()
    assert second != old_claims.kid
    new_token, new_claims = issue(keys)
    assert new_claims.kid == second
    assert open_token(old_token, keys) == old_claims
    keys.rotate(retire=[old_claims.kid])
    with pytest.raises(LinkNotFound):
        open_token(old_token, keys)
    assert open_token(new_token, keys) == new_claims


def test_a_token_from_another_server_does_not_open(tmp_path: Path) -> None:
    """Given two servers with their own keys (same key id by construction)
    When a token of one is opened by the other
    Then it does not open."""
    ours = LocalKeyFile(tmp_path / "a.json")
    theirs = LocalKeyFile(tmp_path / "b.json")
    token, _ = issue(theirs)
    with pytest.raises(LinkNotFound):
        open_token(token, ours)
