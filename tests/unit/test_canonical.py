"""Canonical JSON is RFC 8785 (sorted keys, no white space, ECMAScript numbers), via rfc8785."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from durable_graph.canonical import canonical_bytes, compact_json, digest, json_size_within
from durable_graph.changes import chunk_bytes
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


# RFC 8785 Appendix B: IEEE 754 doubles (as hex bits) and their canonical text.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), RFC_NUMBERS)
def test_rfc8785_number_vectors(bits: str, text: str) -> None:
    """RFC 8785 Appendix B: every listed double serialises to exactly the listed text."""
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_bytes(number) == text.encode()
    assert canonical_bytes([number, {"n": number}]) == f'[{text},{{"n":{text}}}]'.encode()


def test_rfc8785_sorting_and_string_vectors() -> None:
    """RFC 8785 §3.2.3 (keys sorted by UTF-16 code units: the emoji's surrogates sort below
    U+FB33) and §3.2.2's combined example (numbers, escapes, literals)."""
    keys = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    assert canonical_bytes(keys).decode() == (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    example = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert canonical_bytes(example).decode() == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(json_values)
def test_property_canonical_bytes_equal_the_rfc8785_package(sample: Any) -> None:
    """For any JSON value (any text, any key, any finite double, safe integers), the fast path
    and its fallback together write exactly what the `rfc8785` package writes."""
    assert canonical_bytes(sample) == bytes(rfc8785.dumps(sample))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=40), json_values)
def test_property_a_chunk_is_the_rfc8785_form_of_salt_and_value(salt: str, value: Any) -> None:
    """`chunk_bytes` skips canonicalising the salt when it needs no escaping: for any salt (a
    writer's hex, or whatever a tampered row holds) and any value, it writes exactly what the
    `rfc8785` package writes for `{"s": salt, "v": value}`."""
    assert chunk_bytes(salt, value) == bytes(rfc8785.dumps({"s": salt, "v": value}))
    hex_salt = salt.encode().hex()[:32]
    assert chunk_bytes(hex_salt, value) == bytes(rfc8785.dumps({"s": hex_salt, "v": value}))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(json_values)
def test_property_compact_json_is_the_standard_librarys_text(sample: Any) -> None:
    """For any JSON value, the storage form (`orjson` for the common shapes, else the standard
    library) is exactly the standard library's compact, key-sorted text."""
    expected = json.dumps(sample, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert compact_json(sample) == expected


def test_values_orjson_would_write_differently_take_the_other_encoders() -> None:
    """Given values where orjson's own output differs (an integral float, a float with an
    exponent, a 64-bit integer, a lone surrogate, nesting deeper than its 254 levels), then the
    canonical form is still RFC 8785's and the storage form the standard library's."""
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    for value in [1.0, 1e16, 1e-5, 2**60, "\ud800", {"é": 1}, deep, {"n": math.inf}]:
        stdlib = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        assert compact_json(value) == stdlib
        if value == {"n": math.inf}:
            continue  # not JSON: canonical_bytes refuses it (test_non_json_is_refused)
        try:
            expected = bytes(rfc8785.dumps(value))
        except Exception:  # rfc8785 refuses a lone surrogate: so must we
            with pytest.raises(SerializationError):
                canonical_bytes(value)
            continue
        assert canonical_bytes(value) == expected
