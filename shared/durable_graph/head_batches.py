"""Many chain heads under one signature: a Merkle tree over their signed statements.

A group commit settles up to a hundred threads in one transaction (`worker_group.py`), and one
Ed25519 signature per settled head was a tenth of its instructions (OpenSSL's Ed25519 signs in
~0.46M instructions). A batch instead signs the root of a binary hash tree whose leaves are the
heads' statements (`HeadSignature.signed_bytes`, unchanged), and each head's `sig#<step>` record
keeps the same signature and its path: the sibling hashes from its leaf to the root. Verifying
one head needs only its own record: fold the path, then check the signature over the root
(`docs/record-format.md` §9). As in RFC 6962 the leaves and the inner nodes are hashed under
different prefixes, so no inner node can pass for a leaf; an odd node at the end of a level is
carried up as it is (not paired with a copy of itself, which would give two trees one root).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

Side = Literal["l", "r"]  # where the sibling sits: on the left or the right of the running hash
Path = list[tuple[Side, str]]  # sibling hashes (hex) from a leaf up to the root

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(statement: bytes) -> bytes:
    return hashlib.sha256(_LEAF + statement).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def tree(statements: Sequence[bytes]) -> tuple[str, list[Path]]:
    """The root (hex) of the tree over `statements`, and each statement's path to it."""
    if not statements:
        raise ValueError("a batch of heads holds at least one")
    level = [leaf_hash(s) for s in statements]
    positions = list(range(len(statements)))  # each leaf's index in the current level
    paths: list[Path] = [[] for _ in statements]
    while len(level) > 1:
        for leaf, index in enumerate(positions):
            if index % 2:
                paths[leaf].append(("l", level[index - 1].hex()))
            elif index + 1 < len(level):
                paths[leaf].append(("r", level[index + 1].hex()))
            positions[leaf] = index // 2
        carried = level[-1:] if len(level) % 2 else []
        level = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)] + carried
    return level[0].hex(), paths


def root_of(statement: bytes, path: Sequence[tuple[str, str]]) -> str | None:
    """The root `statement`'s `path` leads to (hex), or None when the path is malformed."""
    running = leaf_hash(statement)
    for side, sibling in path:
        try:
            other = bytes.fromhex(sibling)
        except ValueError:
            return None
        if len(other) != 32 or side not in ("l", "r"):
            return None
        running = _node(other, running) if side == "l" else _node(running, other)
    return running.hex()


__all__ = ["Path", "Side", "leaf_hash", "root_of", "tree"]
