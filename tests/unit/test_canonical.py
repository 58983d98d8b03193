"""Canonical JSON is RFC 8785 (sorted keys, no white space, ECMAScript numbers), via rfc8785."""

from __future__ import annotations

import math

import pytest

from durable_graph.canonical import canonical_bytes, compact_json, digest, json_size_within
from durable_graph.errors import SerializationError


def test_rfc8785_form() -> None:
    value = {"b": [1.0, 2.5, 1e21], "a": "é\u2028", "c": {"z": None, "y": True}}
    assert canonical_bytes(value) == (
        '{"a":"é\u2028","b":[1,2.5,1e+21],"c":{"y":true,"z":null}}'.encode()
    )


def test_key_order_does_not_change_the_digest() -> None:
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1: "x"}, b"bytes", object()])
def test_non_json_is_refused(bad: object) -> None:
    with pytest.raises(SerializationError):
        canonical_bytes({"v": bad})


def test_json_size_within_stops_early_and_agrees_with_the_real_size() -> None:
    """Given states around the carry limit, then the estimate answers like the real JSON size
    away from the limit, and refuses a state of a thousand 100 KB strings without walking it
    (the check runs at every step: it must not cost what the state weighs)."""
    small = {"messages": [{"role": "user", "text": "x" * 100}] * 10, "n": 1}
    assert json_size_within(small, 48 * 1024) and len(compact_json(small)) < 48 * 1024
    big = {"messages": ["y" * 100_000] * 1_000}
    assert not json_size_within(big, 48 * 1024)
    many = {"ids": list(range(100_000))}
    assert not json_size_within(many, 48 * 1024)
