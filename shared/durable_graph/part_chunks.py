"""Keeping a value whole as one salted chunk in the payload store: how a state change over the
offload threshold is stored (`stored_change`), and how an io response, interrupt payload,
resume value or task argument (a `Send`'s) over `INLINE_PART_BYTES` is kept out of its record
(`chunked_part`), sized first against the single-value maximum (`sized_change`) so a refused
step writes nothing.
"""

from __future__ import annotations

from typing import Any

from durable_graph.canonical import json_size_within
from durable_graph.changes import CHUNK_CONTENT_TYPE, seal_change
from durable_graph.checkpoint import Change, Op, PayloadRef, Task
from durable_graph.encryption import is_sealed_io
from durable_graph.errors import PayloadTooLarge
from durable_graph.payloads import MARKER
from durable_graph.ports.payload_store import PayloadStore

INLINE_PART_BYTES = 64 * 1024  # a bigger io response, interrupt payload or resume value: a chunk


def sized_change(
    name: str, op: Op, value: Any, most: int, salt: str | None = None
) -> tuple[Change, bytes]:
    """Change `op` of `value` sealed into its chunk (with `salt`, when the caller drew it),
    refused when the chunk is over the single-value maximum."""
    sealed, data = seal_change(op, value, salt)
    if len(data) > most:
        raise PayloadTooLarge(
            f"{name}: one change of {len(data)} bytes is over the {most}-byte maximum of a "
            "single state value (Backend.max_value_bytes); the state as a whole has no limit: "
            "write it in smaller pieces (more steps, an appending reducer) or keep it as a "
            "payload the state points to",
            field=name,
        )
    return sealed, data


def stored_change(change: Change, data: bytes, payloads: PayloadStore, threshold: int) -> Change:
    """The change as its record keeps it: inline, or over `threshold` a ref to its chunk in
    the payload store (addressed by the chunk's digest, which is `change.d`)."""
    if len(data) <= threshold:
        return change
    ref = payloads.put(data, CHUNK_CONTENT_TYPE)
    return Change(op=change.op, d=change.d, ref=ref)


def chunked_part(
    value: Any,
    payloads: PayloadStore,
    most: int,
    name: str,
    fresh: list[PayloadRef] | None = None,
    bound: int = INLINE_PART_BYTES,
) -> Any:
    """An io response, interrupt payload, resume value or task argument as the record keeps it
    (or a part of a fan-out task's result row, `fanin.py`): itself while its JSON is at most
    `bound` (INLINE_PART_BYTES), else `{"$payload": ref}` to the salted chunk of the whole
    value, sized and stored as a state change's chunk is (`sized_change`, `stored_change`), so
    the record stays under the store's item limit whatever the value is made of. The ref (its
    sha256 is the chunk's digest) is what the record hashes; `PayloadTooLarge` only for a
    chunk over the single-value maximum. `fresh` collects the chunks written (`orphans.py`
    deletes them if the record that names them loses its append)."""
    if value is None or json_size_within(value, bound):
        return value
    change, data = sized_change(name, "set", value, most)
    stored = stored_change(change, data, payloads, -1)
    assert stored.ref is not None
    if fresh is not None:
        fresh.append(stored.ref)
    return {MARKER: stored.ref.model_dump(mode="json")}


def chunked_arg(task: Task, payloads: PayloadStore, most: int, fresh: list[PayloadRef]) -> Task:
    """`task` with a big `Send` argument kept whole in a chunk (`chunked_part`), so neither
    the record's task list nor the task's queue message carries it (SQS takes 256 KB). An
    argument sealed by an older writer stays as it is (its chunk would hold the box)."""
    arg = task.arg
    if arg is None or is_sealed_io(arg):
        return task
    part = chunked_part(arg, payloads, most, f"the argument of task {task.id!r}", fresh)
    return task if part is arg else task.copied(arg=part)
