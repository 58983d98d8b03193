"""A checkpoint header is stored as a delta on the previous one and expands back exactly."""

from __future__ import annotations

from typing import Any

from durable_graph.langgraph_saver.header import compress, expand


def _header(cid: str, parent: str | None, versions: dict[str, str], seen: dict[str, Any]) -> Any:
    return {
        "id": cid,
        "parent": parent,
        "ts": "2026-11-30T00:00:00+00:00",
        "v": 4,
        "versions": versions,
        "seen": seen,
        "updated": ["a"],
        "meta": "msgpack:x",
        "extra": None,
    }


def test_a_header_keeps_only_what_changed_and_expands_back() -> None:
    # Given two successive headers: one version bumped, one channel gone, one node ran
    first = _header("c1", None, {"a": "1", "b": "1", "c": "1"}, {"n1": {"a": "1"}, "n2": {}})
    second = _header("c2", "c1", {"a": "2", "b": "1"}, {"n1": {"a": "2"}})

    # When each is stored on its predecessor
    stored = [compress(first, None), compress(second, first)]

    # Then the second holds only the changes, and the parent is left out as implied
    assert stored[1]["dv"] == {"a": "2"} and stored[1]["rv"] == ["c"]
    assert stored[1]["ds"] == {"n1": {"a": "2"}} and stored[1]["rs"] == ["n2"]
    assert "parent" not in stored[1] and "versions" not in stored[1]
    # and both expand back exactly
    assert expand(stored[0], None) == first
    assert expand(stored[1], first) == second


def test_a_parent_other_than_the_previous_checkpoint_is_kept() -> None:
    first = _header("c1", None, {"a": "1"}, {})
    fork = _header("c2", "c0", {"a": "1"}, {})
    stored = compress(fork, first)
    assert stored["parent"] == "c0" and expand(stored, first) == fork


def test_a_whole_header_of_the_earlier_format_reads_as_it_is() -> None:
    whole = _header("c2", "c1", {"a": "2"}, {})
    assert expand(whole, _header("c1", None, {"a": "1", "z": "1"}, {})) == whole
