"""The hash tree that lets one signature cover a batch of chain heads (`head_batches.py`)."""

from __future__ import annotations

import hashlib
import random

import pytest

from durable_graph.head_batches import leaf_hash, root_of, tree


def statements(count: int) -> list[bytes]:
    return [f'{{"thread_id":"t-{i}","step":{i}}}'.encode() for i in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100])
def test_every_statement_folds_to_the_root_along_its_own_path(count: int) -> None:
    """Whatever the batch's size (odd levels carry their last node up), each statement's
    path leads to the one root, and a path is at most ceil(log2(count)) siblings long."""
    batch = statements(count)
    root, paths = tree(batch)
    assert len(paths) == count
    for statement, path in zip(batch, paths, strict=True):
        assert root_of(statement, path) == root
        assert len(path) <= max(0, (count - 1).bit_length())
    if count == 1:
        assert paths == [[]] and root == leaf_hash(batch[0]).hex()


def test_a_changed_statement_or_path_leads_elsewhere() -> None:
    """A statement altered by one byte, another statement's path, a sibling altered, or a
    side flipped: none folds to the batch's root."""
    batch = statements(9)
    root, paths = tree(batch)
    rng = random.Random(7)
    for index, (statement, path) in enumerate(zip(batch, paths, strict=True)):
        altered = statement.replace(b"t-", b"u-")
        assert root_of(altered, path) != root
        other = paths[(index + 1) % len(paths)]
        assert other == path or root_of(statement, other) != root
        at = rng.randrange(len(path))
        side, sibling = path[at]
        flipped_sibling = [*path[:at], (side, sibling[:-1] + ("0" if sibling[-1] != "0" else "1"))]
        assert root_of(statement, flipped_sibling + path[at + 1 :]) != root
        flipped_side = [*path[:at], ("r" if side == "l" else "l", sibling), *path[at + 1 :]]
        assert root_of(statement, flipped_side) != root


def test_an_inner_node_cannot_pass_for_a_leaf() -> None:
    """The leaves and the inner nodes are hashed under different prefixes: the two leaf
    hashes of a pair, concatenated, are not a statement whose leaf is their parent."""
    batch = statements(2)
    root, _ = tree(batch)
    joined = leaf_hash(batch[0]) + leaf_hash(batch[1])
    assert root_of(joined, []) != root
    assert hashlib.sha256(b"\x01" + joined).hexdigest() == root


@pytest.mark.parametrize(
    "path", [[("l", "zz" * 32)], [("l", "ab" * 31)], [("x", "ab" * 32)], [("r", "")]]
)
def test_a_malformed_path_folds_to_nothing(path: list[tuple[str, str]]) -> None:
    assert root_of(b"{}", path) is None


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        tree([])
