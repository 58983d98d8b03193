"""The `ctx.save` objects a value points to, so that erasure reaches them and keeps those that
another thread still points to.

`ctx.save(data)` puts bytes in the payload store and returns a `PayloadRef`; a node keeps it in
its state (or passes it in a `Send`, an io response, an interrupt payload) as the ref's JSON:
`{"uri", "sha256", "size", "content_type"}`. Unlike a `{"$payload": ref}` marker, which the
record format puts there (and `ledger.record_refs` finds in the record itself), such a ref is
*inside a value*: in a change's inline value, in the chunk of a big one, or sealed with the
thread's data key. Erasing the value leaves the object behind unless erasure looks inside it.

Without encryption the object is content-addressed and unsalted, so two threads that saved the
same bytes (or a ref handed from one thread to another, say as a run's input) share it: it may
go only when no other thread's values point to it. Finding that out means reading other
threads' values, chunks included (`refs_in_record`), which a reference scan otherwise never
does: `References(deep=True)` (`references.py`) does it only for erasures that have such an
object to delete. With encryption on, what a thread saves is sealed under its own key (another
thread saving the same bytes gets another object), so it is that thread's alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from durable_graph.checkpoint import Change, Checkpoint, PayloadRef
from durable_graph.encryption import ThreadCipher, chunk_value, is_sealed, open_change
from durable_graph.errors import PayloadCorrupted
from durable_graph.payloads import CHUNK_CONTENT_TYPE, MARKER
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_payloads import open_sealed

_SHA = re.compile(r"^[0-9a-f]{64}$")
_KEYS = frozenset(PayloadRef.model_fields)
_NEEDED = frozenset({"uri", "sha256", "size"})

Chunks = Callable[[PayloadRef], Any]  # a chunk ref -> the value it holds (None: unreadable)


def saved_ref(value: Any) -> PayloadRef | None:
    """`value` as a `PayloadRef` if it is one's JSON (what `ctx.save` returned, dumped)."""
    if not isinstance(value, dict) or not _NEEDED <= value.keys() <= _KEYS:
        return None
    if not isinstance(value["sha256"], str) or not _SHA.match(value["sha256"]):
        return None
    try:
        return PayloadRef.model_validate(value)
    except ValidationError:
        return None


def saved_refs(value: Any, chunks: Chunks | None = None, into: dict[str, PayloadRef] | None = None
               ) -> dict[str, PayloadRef]:  # fmt: skip
    """Every saved ref inside the JSON `value`, by digest; a `{"$payload": ref}` to a chunk
    (a big part kept whole) is read through `chunks` and looked into too."""
    found = {} if into is None else into
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            ref = saved_ref(item)
            if ref is not None:
                found[ref.sha256] = ref
            elif len(item) == 1 and MARKER in item:
                inner = saved_ref(item[MARKER])
                if inner is not None and chunks is not None and _is_chunk(inner):
                    stack.append(chunks(inner))
            else:
                stack.extend(item.values())
    return found


def change_value(change: Change, chunks: Chunks, cipher: ThreadCipher | None) -> Any:
    """The value a stored change holds: inline, in its chunk, or sealed (opened with `cipher`;
    None without one: a sealed value is not looked into)."""
    if change.s is not None:
        return change.v
    if change.e is not None:
        return None if cipher is None else chunk_value(open_change(change, cipher))
    if change.ref is not None:
        return chunks(change.ref)
    return None


def record_values(record: Checkpoint) -> list[Any]:
    """What a record holds besides its changes, as stored: the values of a format-1 record,
    io responses, task arguments, the interrupt payload, resume values."""
    parts: list[Any] = [io.response for io in record.io]
    parts += [task.arg for task in record.next]
    parts += [v for values in record.resume.values() for v in values]
    if record.interrupt is not None:
        parts.append(record.interrupt.payload)
    if record.format < 2:
        parts.append(record.values)
    return parts


def refs_in_record(record: Checkpoint, chunks: Chunks, cipher: ThreadCipher | None
                   ) -> dict[str, PayloadRef]:  # fmt: skip
    """Every saved ref a stored record's values point to (its changes, chunks read through
    `chunks`, sealed ones opened with `cipher` when given, and its other parts)."""
    found: dict[str, PayloadRef] = {}
    for change in record.changes.values():
        saved_refs(change_value(change, chunks, cipher), chunks, found)
    saved_refs(record_values(record), chunks, found)
    return found


def chunk_reader(payloads: PayloadStore, cipher: ThreadCipher | None) -> Chunks:
    """Reads the value of a change's or part's chunk from the raw payload store (a sealed one
    opened with `cipher`, or skipped without it); a chunk gone or unreadable holds nothing."""

    def read(ref: PayloadRef) -> Any:
        if is_sealed(ref) and cipher is None:
            return None
        try:
            data = payloads.get(ref)
        except PayloadCorrupted:
            return None  # gone (erased with its value) or not the bytes hashed: holds nothing
        if is_sealed(ref):
            assert cipher is not None
            data = open_sealed(cipher, ref, data)  # a broken seal: `PayloadCorrupted`
        return chunk_value(data)

    return read


def _is_chunk(ref: PayloadRef) -> bool:
    return ref.content_type.split(";")[0].strip() == CHUNK_CONTENT_TYPE


__all__ = [
    "Chunks",
    "change_value",
    "chunk_reader",
    "record_values",
    "refs_in_record",
    "saved_ref",
    "saved_refs",
]
