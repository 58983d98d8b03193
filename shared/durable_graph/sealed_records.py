"""Values kept in the small records beside the chain, sealed when encryption at rest is on
(`encryption.py`): the writes and io of a fan-out task's result row (`done#…`, `fanin.py`), a
`ctx.step` side effect's result (`context.py`), and who approved (`PERSONAL`: the approvals
collected toward a rule, `approvals#<step>`, and an approval link's named approver, decider,
comment and signoff, `approval#<token hash>`). They hold the same values the chain does, or
people's names, emails and comments, so they are sealed with the same per-thread data key, and
destroying it makes them unreadable too.

The records of `PERSONAL` are sealed and opened by the checkpoint store itself
(`backends/records.RecordStore`: `seal_record` on every write, `open_record_value` on every
read), so the approval code reads and compares them in the clear and never sees a sealed one.

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
from durable_graph.ports.commit_writes import RecordWrite

# Record key prefix -> its fields that name or quote people: sealed at rest (the others, the
# step, node, state and expiry the approval code matches on, stay in the clear).
PERSONAL: dict[str, tuple[str, ...]] = {
    "approvals#": ("approvals",),
    "approval#": ("sub", "comment", "decided_by", "signoff"),
}


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


def personal_fields(key: str) -> tuple[str, ...]:
    """The fields of record `key` sealed at rest (empty: none)."""
    for prefix, names in PERSONAL.items():
        if key.startswith(prefix):
            return names
    return ()


def seal_record(
    keys: Keyring | None, thread_id: str, key: str, value: dict[str, Any]
) -> dict[str, Any]:
    """`value` as the store keeps it: its `PERSONAL` fields sealed (as it is without `keys`,
    or for any other record)."""
    names = personal_fields(key)
    if keys is None or not names or SEALED in value:
        return value
    return seal_with(value, names, keys.ensure(thread_id), key)


def seal_writes(
    keys: Keyring | None, thread_id: str, writes: Sequence[RecordWrite]
) -> tuple[RecordWrite, ...]:
    """A commit's companion records as the store keeps them (`seal_record`)."""
    return tuple(
        RecordWrite(w.key, seal_record(keys, thread_id, w.key, w.value), w.expected_version)
        for w in writes
    )


def open_record_value(
    keys: Keyring | None, thread_id: str, key: str, value: dict[str, Any]
) -> dict[str, Any]:
    """A stored `PERSONAL` record opened. Where its key was destroyed (the thread was erased)
    or is not at hand, the sealed fields are simply absent: no approvals, no comment."""
    if SEALED not in value or not personal_fields(key):
        return value
    if keys is None:
        return {k: v for k, v in value.items() if k != SEALED}
    try:
        cipher = keys.cipher(thread_id)
    except DataKeyUnavailable:
        return {k: v for k, v in value.items() if k != SEALED}
    return open_with(value, cipher, key)


__all__ = [
    "PERSONAL",
    "open_fields",
    "open_record_value",
    "open_with",
    "personal_fields",
    "seal_fields",
    "seal_record",
    "seal_with",
    "seal_writes",
]
