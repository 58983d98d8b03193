"""How the embedded store keeps a row's body (checkpoints, records, mail): JSON text, its sealed
values as bytes, zstd of it when big.

A row that carries data (a chat turn's message, a document's text) is mostly text and hex
digests, which compression about halves, and the rows are most of an embedded store's bytes
(`docs/record-format.md` §2, "Where rows live"). So a body of `COMPRESS_FROM` bytes or more
*besides its digests* is stored as a BLOB of a zstd frame of it (level 1) when that saves at
least an eighth; a smaller one stays readable JSON text. The digests do not count: a change's
digest and salt are about 100 characters of hex (`HEX_PER_CHANGE`), and a row of small values
is mostly them, bookkeeping whose bytes do not grow with the thread's data. The seed approval
flow wrote three rows of 1.2-2 KB per thread, compressed to 57% at about 95,000 instructions
each (3% of the flow's instructions); two of them (10 and 3 changes of short strings) now stay
text, about 1.6 KB more per thread, while its suspension's row (the draft twice: the state and
the recorded LLM response) and a chat turn's 1 KB of text still compress (to 67% for the chat,
which keeps a chat store within 2x its raw bytes: `bench/storage_growth.py`, 1.72x).
zstd level 1 compresses such rows about 2.5x faster than zlib level 1 (the format before it)
and inflates them about 2x faster, into 1-3% more bytes.
Each thread of the process reuses one compression and one decompression context: creating
one per row cost more than compressing it.

With encryption at rest, a row's JSON holds each sealed value as `"~" + base64(box)`, a third
more bytes than the box. Such a body is stored *packed* (`backends/packed_bodies.py`, as the
PostgreSQL store's `bytea` bodies): a BLOB of `MAGIC ‖ text ‖ box ‖ … ‖ text`, itself
compressed whatever its size when that saves an eighth (it is not readable text anyway).

SQLite keeps the storage class of each value, so a reader tells the encodings apart by type
and first bytes: text is the JSON; a BLOB starting with `MAGIC` is packed; one starting with
`ZSTD_MAGIC` is a zstd frame (of the JSON, or of a packed body); any other BLOB is a zlib stream,
how releases before zstd rows compressed (no zlib stream starts with a NUL byte, and none with
`ZSTD_MAGIC`, whose first two bytes fail zlib's header check). Rows written before (text, zlib
of the JSON, sealed values as base64) read as they always did; nothing is rewritten. These are
storage encodings only: the hash is over the record, and the decoded body is exactly the row's
stored JSON.
"""

from __future__ import annotations

import threading
import zlib

import zstandard
from pydantic import BaseModel

from durable_graph.backends.packed_bodies import MAGIC, pack, unpack

COMPRESS_FROM = 1024  # bytes of stored JSON besides digests; a smaller row stays text (greppable)
# Characters of hex a change entry holds (`"d":"<64 hex>"` and `"s":"<32 hex>"` with their keys):
# not counted towards `COMPRESS_FROM`.
HEX_PER_CHANGE = 100
_CHANGE = '"d":"'  # once per change entry (`docs/record-format.md` §3)
LEVEL = 1  # zstd's fastest standard level; within 3% of level 3's size on 1-3 KB rows
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # the first bytes of every zstd frame
# What a damaged BLOB raises from `decode_body` (zstd's, zlib's, or a packed body's own).
BODY_ERRORS: tuple[type[Exception], ...] = (zstandard.ZstdError, zlib.error, ValueError)

_contexts = threading.local()  # this thread's (compressor, decompressor): not thread-safe


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    try:
        pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] = _contexts.pair
    except AttributeError:
        # The frame records its content size, so a reader allocates the body once.
        pair = (
            zstandard.ZstdCompressor(level=LEVEL, write_content_size=True),
            zstandard.ZstdDecompressor(),
        )
        _contexts.pair = pair
    return pair


def encode_body(text: str) -> str | bytes:
    """The value to store for a row whose stored JSON is `text`."""
    if len(text) < COMPRESS_FROM and text.isascii() and '"~' not in text:
        return text  # small, nothing to pack: as below, without encoding it first
    data = pack(text)  # the UTF-8 JSON when it holds no sealed value
    packed = data.startswith(MAGIC)  # binary already: no text to keep readable, whatever its size
    if packed or len(data) - HEX_PER_CHANGE * text.count(_CHANGE) >= COMPRESS_FROM:
        small = _zstd()[0].compress(data)
        if len(small) <= len(data) - len(data) // 8:
            return small
    return data if packed else text


def decode_body(body: str | bytes) -> str | bytes:
    """The stored JSON of a row as read back (text, or its UTF-8 bytes). Raises one of
    `BODY_ERRORS` for a BLOB that is no encoding (a damaged row)."""
    if isinstance(body, str):
        return body
    if body.startswith(ZSTD_MAGIC):
        body = _zstd()[1].decompress(body)
    elif not body.startswith(MAGIC):
        body = zlib.decompress(body)  # a row of a release before zstd rows
    return unpack(body) if body.startswith(MAGIC) else body


def model_text(model: BaseModel, exclude: set[str] | None = None) -> str:
    """`model.model_dump_json(exclude=exclude)`, the same text, from the model's serializer
    itself: the method's keyword handling cost about 7,000 instructions a call, a third of
    dumping a thread head or a queued message (6 of them per approval thread)."""
    return model.__pydantic_serializer__.to_json(model, exclude=exclude).decode()


__all__ = [
    "BODY_ERRORS",
    "COMPRESS_FROM",
    "ZSTD_MAGIC",
    "decode_body",
    "encode_body",
    "model_text",
]
