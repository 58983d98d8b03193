"""How the embedded store keeps a row's body (checkpoints, records, mail): JSON text, its sealed
values as bytes, zlib of it when big.

A row that carries data (a chat turn's message, a document's text) is mostly text and hex
digests, which zlib halves, and the rows are most of an embedded store's bytes
(`docs/record-format.md` §2, "Where rows live"). So a body of `COMPRESS_FROM` bytes or more
is stored as a BLOB of zlib of it (level 1, a 16 KB window) when that saves at least an
eighth; a smaller one stays readable JSON text.

With encryption at rest, a row's JSON holds each sealed value as `"~" + base64(box)`, a third
more bytes than the box. Such a body is stored *packed* (`backends/packed_bodies.py`, as the
PostgreSQL store's `bytea` bodies): a BLOB of `MAGIC ‖ text ‖ box ‖ … ‖ text`, itself zlib'd
whatever its size when that saves an eighth (it is not readable text anyway). SQLite keeps
the storage class of each value, so a reader tells them apart by type and first bytes: text is
the JSON, a BLOB starting with `MAGIC` is packed, any other BLOB is zlib (of the JSON, or of a
packed body: a zlib stream never starts with `MAGIC`'s NUL byte). Rows written before packing
(text, or zlib of the JSON, sealed values as base64) read as they always did; nothing is
rewritten. These are storage encodings only: the hash is over the record, and the decoded body
is exactly the row's stored JSON.
"""

from __future__ import annotations

import zlib

from durable_graph.backends.packed_bodies import MAGIC, pack, unpack

COMPRESS_FROM = 1024  # bytes of stored JSON; a smaller row stays text (and greppable)
LEVEL = 1  # as small as level 6 on rows (measured: 0.657 vs 0.651 of the JSON), faster
# zlib's default state (a 32 KB window, memory level 8) is ~260 KB, allocated and freed on
# every `zlib.compress`: the C heap grows and is trimmed again each time, so each row paid ~20
# page faults, 40-50 us of system time, more than compressing it. A 16 KB window at memory
# level 5 (~80 KB, reused from the heap) compresses rows to the same size (within 0.1% on 1-3
# KB rows; 2% smaller on a 21 KB one); the stream is standard zlib, which `decode_body` (and
# any release) reads: the window it needs is in the stream's header.
WINDOW_BITS = 14
MEMORY_LEVEL = 5


def encode_body(text: str) -> str | bytes:
    """The value to store for a row whose stored JSON is `text`."""
    data = pack(text)  # the UTF-8 JSON when it holds no sealed value
    packed = data.startswith(MAGIC)  # binary already: no text to keep readable, whatever its size
    if packed or len(data) >= COMPRESS_FROM:
        deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, WINDOW_BITS, MEMORY_LEVEL)
        small = deflate.compress(data) + deflate.flush()
        if len(small) <= len(data) - len(data) // 8:
            return small
    return data if packed else text


def decode_body(body: str | bytes) -> str | bytes:
    """The stored JSON of a row as read back (text, or its UTF-8 bytes). Raises `zlib.error`
    or `ValueError` for a BLOB that is neither encoding (a damaged row)."""
    if isinstance(body, str):
        return body
    if not body.startswith(MAGIC):
        body = zlib.decompress(body)
    return unpack(body) if body.startswith(MAGIC) else body


__all__ = ["COMPRESS_FROM", "decode_body", "encode_body"]
