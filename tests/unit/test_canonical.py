"""Canonical JSON is RFC 8785 (sorted keys, no white space, ECMAScript numbers), via rfc8785."""

from __future__ import annotations

import math

import pytest

from durable_graph.canonical import canonical_bytes, digest
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
