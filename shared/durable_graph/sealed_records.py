"""Values kept in the small records beside the chain, sealed when encryption at rest is on
(`encryption.py`): the writes and io of a fan-out task's result row (`done#…`, `fanin.py`) and
a `ctx.step` side effect's result (`context.py`). They hold the same values the chain does, so
they are sealed with the same per-thread data key, and destroying it makes them unreadable too.

A sealed record keeps its other fields as they are and holds the sealed ones as
`"$sealed": base64(nonce || AES-GCM(compact JSON {field: value}))`, with the record's key as
associated data (a sealed blob moved to another record does not open).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from durable_graph.canonical import compact_json
from durable_graph.encryption import SEALED, SealBroken, ThreadCipher
from durable_graph.errors import DataKeyUnavailable, PayloadCorrupted
from durable_graph.keys import Keyring


def seal_fields(
    value: Mapping[str, Any],
    names: Sequence[str],
    keys: Keyring | None,
    thread_id: str,
    key: str,
) -> dict[str, Any]:
    """`value` with `names` sealed under the thread's data key (as it is, without `keys`)."""
    if keys is None:
        return dict(value)
    return seal_with(value, names, keys.ensure(thread_id), key)


def seal_with(
    value: Mapping[str, Any], names: Sequence[str], cipher: ThreadCipher, key: str
) -> dict[str, Any]:
    inner = {name: value[name] for name in names if name in value}
    out = {k: v for k, v in value.items() if k not in names}
    out[SEALED] = cipher.seal_text(compact_json(inner).encode("utf-8"), key.encode("utf-8"))
    return out


def open_fields(
    value: Mapping[str, Any], keys: Keyring | None, thread_id: str, key: str
) -> dict[str, Any]:
    """`value` with its sealed fields opened (a record written in the clear: as it is)."""
    if SEALED not in value:
        return dict(value)
    if keys is None:
        raise DataKeyUnavailable(thread_id, "the store was opened without its key-encryption key")
    return open_with(value, keys.cipher(thread_id), key)


def open_with(value: Mapping[str, Any], cipher: ThreadCipher, key: str) -> dict[str, Any]:
    try:
        inner = json.loads(cipher.open_text(str(value[SEALED]), key.encode("utf-8")))
    except (SealBroken, ValueError) as exc:
        raise PayloadCorrupted(f"record {key!r}: its sealed fields do not open: {exc}") from exc
    out = {k: v for k, v in value.items() if k != SEALED}
    out.update(inner)
    return out


__all__ = ["open_fields", "open_with", "seal_fields", "seal_with"]
