"""`backends/packed_bodies.py`: a row's JSON packed with its sealed values as bytes comes back
byte for byte, whatever else the JSON holds; only sealed values are packed."""

from __future__ import annotations

import base64
import json

import pytest

from durable_graph.backends.packed_bodies import MAGIC, pack, unpack
from durable_graph.canonical import compact_json

BOX = "~" + base64.b64encode(bytes(range(256)) * 3).decode()


@pytest.mark.parametrize(
    "doc",
    [
        {"e": BOX, "v": [BOX, {"x": BOX}], "n": 1},
        {"text": 'a "~QUJD" in a string', "s": "~QUJD", "t": "~abc", "u": "~QUI="},
        {"quote": 'x\\"~QUJD\\"', "list": ["~", "~~", "~QQ==", "~QR=="]},
        {"plain": "no sealed value", "unicode": "Jane Röe ✓"},
        {"ends": BOX},
    ],
)
def test_round_trip_is_exact(doc: dict[str, object]) -> None:
    text = compact_json(doc)
    assert unpack(pack(text)) == text
    assert unpack(text.encode()) == text, "a body written before packing reads as it is"


def test_only_sealed_values_are_packed() -> None:
    text = compact_json({"e": BOX, "note": f"says {BOX}", "k": "~QR=="})
    packed = pack(text)
    assert packed.startswith(MAGIC)
    assert len(packed) < len(text) - len(BOX) // 4 + 16
    assert BOX.encode() in packed, "inside another string it stays text"
    assert b"~QR==" in packed, "non-canonical base64 stays text"
    assert pack('{"a":1}') == b'{"a":1}'


def test_a_truncated_body_is_an_error() -> None:
    packed = pack(json.dumps({"e": BOX}, separators=(",", ":")))
    with pytest.raises(ValueError, match="truncated"):
        unpack(packed[:-40])
