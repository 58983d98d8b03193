"""Canonical JSON is RFC 8785 (sorted keys, no white space, ECMAScript numbers), via rfc8785."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import rfc8785

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


def test_the_fast_encoder_writes_exactly_what_rfc8785_writes() -> None:
    """Given 3,000 random JSON values (nested lists and objects, ASCII and non-ASCII keys and
    strings, control characters, quotes, integers near 2^53, integral, small, large and
    negative floats), then `canonical_bytes` equals the `rfc8785` package byte for byte."""
    rng = random.Random(8785)
    alphabet = ["a", "Z", "é", "\u2028", "\x00", "\x1f", '"', "\\", "\n", "\t", "😀", "/", "\x7f"]

    def scalar() -> object:
        pick = rng.randrange(9)
        if pick == 0:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
        if pick == 1:
            return rng.choice([0, 1, -1, 2**53 - 1, -(2**53) + 1, 10**15, 123456789])
        if pick == 2:
            return rng.choice([0.0, -0.0, 1.0, 2.5, 0.1, 1e-4, 9.99e-5, 1e15, 1e16, 1e21, 1e-7])
        if pick == 3:
            return rng.uniform(-1e6, 1e6)
        if pick == 4:
            return rng.choice([True, False, None])
        if pick == 5:
            return rng.random() * 10 ** rng.randrange(-9, 22)
        return "".join(rng.choice("abc xyz") for _ in range(rng.randrange(12)))

    def value(depth: int) -> object:
        if depth > 3 or rng.random() < 0.4:
            return scalar()
        if rng.random() < 0.5:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        keys = ["k", "b", "a", "é", "Z", "_1", "😀", ""]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(3_000):
        sample: Any = value(0)
        assert canonical_bytes(sample) == bytes(rfc8785.dumps(sample)), sample
