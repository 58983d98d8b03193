"""How a DynamoDB checkpoint item keeps its row: JSON text, or zlib of it when that is cheaper.

DynamoDB bills a write by the item's size in started kilobytes (twice that inside a
transaction), a read by started 4 KB, and storage by the byte. A checkpoint row is mostly text
and hex digests, which zlib shrinks to about 60% (a row of data-free bookkeeping) or less. So
an item over one write unit keeps its row as a binary `body` of `zlib.compress(row)` whenever
that is smaller (never more write units; often fewer), and an item of one write unit keeps
readable JSON text (`S`): a small row stays greppable in the console, where compressing would
save no write unit and few bytes. Stored bytes are the 2x-raw budget's measure: a 1 KB chat
turn's row is about 2 KB of JSON (two write units either way), 1.96x the message as text
and 1.3x compressed (`bench/long_threads.py aws-chat`).

The same encoding as the embedded store's big rows (`backends/local/row_bodies.py`): zlib of the
stored JSON, told apart by type alone (`B` is compressed), and rows written before this, all
text, read as they always did. It is a storage encoding only: the hash is over the record, not
over these bytes, and the decompressed body is exactly the row's stored JSON.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

WRITE_UNIT_BYTES = 1024  # DynamoDB's write request unit: one per started KB of item
LEVEL = 6  # rows are small: level 6 costs well under a millisecond and keeps ~1% more


def item_bytes(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item (or of a request's attribute values): each attribute's name
    plus its value (strings and numbers as text, binary as its bytes)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        for kind, raw in value.items():
            if kind == "B":
                total += len(raw)
            elif kind in ("S", "N"):
                total += len(str(raw).encode())
            else:
                total += len(str(raw).encode())  # sets, lists, maps: an estimate
    return total


def write_units(item: Mapping[str, Any]) -> int:
    """Write units of putting `item` alone (inside a transaction it bills twice this)."""
    return max(1, math.ceil(item_bytes(item) / WRITE_UNIT_BYTES))


def body_value(row: str, key_bytes: int) -> AttributeValueTypeDef:
    """The `body` attribute of an item holding `row` beside `key_bytes` of keys and names:
    compressed when the item is over one write unit and zlib makes it smaller (see the module
    docstring)."""
    data = row.encode()
    plain = math.ceil((key_bytes + len(data)) / WRITE_UNIT_BYTES)
    if plain <= 1:
        return {"S": row}
    packed = zlib.compress(data, LEVEL)
    return {"B": packed} if len(packed) < len(data) else {"S": row}


def row_of(value: Mapping[str, Any]) -> str | bytes:
    """The stored JSON of a `body` attribute as read back (text, or decompressed bytes).
    Raises `zlib.error` on a damaged compressed body."""
    if "B" in value:
        return zlib.decompress(value["B"])
    text: str = value["S"]
    return text


__all__ = ["body_value", "item_bytes", "row_of", "write_units"]
