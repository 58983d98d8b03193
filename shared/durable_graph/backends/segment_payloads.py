"""How snapshots and their segments are kept as payloads (`snapshots.py`,
`docs/record-format.md` §7): compressed JSON, fetched in batches, and a list's (or dict's)
segment refs gathered from its entry.

Compressed JSON: a segment is a second copy of what the rows hold, so it is kept as small as
it cheaply can be. Segments and pages are zstd (a cold read of a long thread inflates every
segment: zstd inflates 1 KB-per-turn chat text about 5x faster than zlib, into 0.41 of its
size against zlib's 0.45); the snapshot document itself, small, stays zlib. Segments and
pages written as zlib by earlier releases read the same (told apart by their first bytes).
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import zstandard
from pydantic_core import from_json

from durable_graph.canonical import compact_json
from durable_graph.checkpoint import PayloadRef
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import PayloadStore

ZSTD_LEVEL = 3  # higher levels gain under 1% on chat text and cost the writer more
LIST_KEYS = ("segs", "pages")
DICT_KEYS = ("dsegs", "dpages")
_local = threading.local()
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # the first bytes of a zstd frame (a zlib stream: 0x78)


def segment_refs(
    payloads: PayloadStore, entry: Mapping[str, Any], keys: tuple[str, str] = LIST_KEYS
) -> list[PayloadRef]:
    """A list's (or dict's) segment refs in order: those of its full pages, then its own."""
    segs, paged = keys
    refs: list[Any] = []
    pages = [PayloadRef.model_validate(page) for page in entry.get(paged, [])]
    for page in fetch_all(payloads, pages):
        refs.extend(shaped(page, list, paged))
    refs.extend(entry[segs])
    return [PayloadRef.model_validate(ref) for ref in refs]


def shaped(value: Any, kind: type, name: str) -> Any:
    """A segment or page as its entry says it is (a list's segment holding an object would
    otherwise extend the list with its keys)."""
    if type(value) is not kind:
        raise ValueError(f"{name}: a segment holds {type(value).__name__}, not {kind.__name__}")
    return value


def fetch_all(payloads: PayloadStore, refs: Sequence[PayloadRef]) -> list[Any]:
    """The segments under `refs`, unpacked, in order: fetched the way the store reads many
    payloads fastest (`payload_batches.py`: one query, a local loop, or a few at a time)."""
    return [unpack(data) for data in get_many(payloads, refs)]


def pack(value: Any, *, zstd: bool = True) -> bytes:
    data = compact_json(value).encode()
    return zstandard.compress(data, ZSTD_LEVEL) if zstd else zlib.compress(data, 6)


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor (one is not safe to share between threads; making one
    per segment cost a tenth of a cold read)."""
    made: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if made is None:
        made = _local.zstd = zstandard.ZstdDecompressor()
    return made


def unpack(data: bytes) -> Any:
    try:
        if data[:4] == _ZSTD_MAGIC:
            text = _decompressor().decompress(data)
        else:
            text = zlib.decompress(data)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise ValueError(f"not a compressed snapshot or segment: {exc}") from exc
    try:
        # pydantic-core's parser (a core dependency already) builds the same values as
        # `json.loads` in about 0.6 of the time; what it refuses (a lone surrogate escape,
        # which the writer never stores) goes through `json.loads`, as before. It caches the
        # strings of keys only: caching short values too (its default) took a fifth longer
        # on a chat's segments, whose values are long and distinct.
        return from_json(text, cache_strings="keys")
    except ValueError:
        return json.loads(text)


__all__ = [
    "DICT_KEYS",
    "LIST_KEYS",
    "ZSTD_LEVEL",
    "fetch_all",
    "pack",
    "segment_refs",
    "shaped",
    "unpack",
]
