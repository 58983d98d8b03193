"""How the embedded store keeps a checkpoint row's body: JSON text, or zlib of it when big.

A row that carries data (a chat turn's message, a document's text) is mostly text and hex
digests, which zlib halves, and the rows are most of an embedded store's bytes
(`docs/record-format.md` §2, "Where rows live"). So a body of `COMPRESS_FROM` bytes or more
is stored as a BLOB of `zlib.compress(body, 1)` when that saves at least an eighth; a smaller
one stays readable JSON text. SQLite keeps the storage class of each value, so a reader tells
them apart by type alone (`bytes` is compressed), and rows written before this, all text, read
as they always did. Compression is a storage encoding only: the hash is over the record, not
over these bytes, and the decompressed body is exactly the row's stored JSON.
"""

from __future__ import annotations

import zlib

COMPRESS_FROM = 1024  # bytes of stored JSON; a smaller row stays text (and greppable)
LEVEL = 1  # as small as level 6 on rows (measured: 0.657 vs 0.651 of the JSON), faster


def encode_body(text: str) -> str | bytes:
    """The value to store for a row whose stored JSON is `text`."""
    data = text.encode()
    if len(data) < COMPRESS_FROM:
        return text
    packed = zlib.compress(data, LEVEL)
    return packed if len(packed) <= len(data) - len(data) // 8 else text


def decode_body(body: str | bytes) -> str | bytes:
    """The stored JSON of a row as read back (text, or the decompressed bytes)."""
    if isinstance(body, bytes):
        return zlib.decompress(body)
    return body


__all__ = ["COMPRESS_FROM", "decode_body", "encode_body"]
