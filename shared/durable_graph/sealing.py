"""Sealing a step into a format-2 record (`docs/record-format.md`): from the fields a step
changed to the hashed, chunked record, in work proportional to the change.

- each changed field becomes a salted chunk (`changes.seal_change`); a chunk over the backend's
  offload threshold goes to the payload store, addressed by its own digest;
- the field digests advance and the state root is recomputed over them (O(fields));
- a field not set for `KEEP_EVERY` steps is re-set (`keep`), so a cold read never folds
  further back than that for it: a small one by value, one whose whole value is a stored chunk
  by reference to that chunk (no bytes copied); a long list, dict or string held inline or
  grown by appends is what grows, and is never copied;
- a task list or io list too long for a record goes to the payload store (`next_ref`, `io_ref`);
- an io response, interrupt payload, resume value or task argument (a `Send`'s) over
  `INLINE_PART_BYTES` goes to the payload store whole, as the same salted chunk a state change
  is, and the record keeps (and hashes) `{"$payload": ref}` in its place (`payloads.loaded`
  brings it back); a queued task carries the same ref, and a fan-out task's result row
  (`fanin.py`) keeps its big parts the same way (`chunked_part`);
- every task argument, interrupt payload, resume value, error message and io response gets a
  salt of its own, last (`salted_parts.py`): the record hashes each by its salted digest.

The first record of a thread (or the first one written over a format-1 record) sets every
field, so a fold never has to cross into another thread or format.

`StepSealer` (`step_sealer.py`) is how the engine seals a step: it adds the fields every record
of one graph on one backend shares and calls `seal`; `part_chunks.py` keeps big parts whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backends.records import LIST_CONTENT_TYPE, list_bytes
from durable_graph.canonical import ZERO_HASH, digest, json_size_within
from durable_graph.changes import advance_all, state_root
from durable_graph.checkpoint import (
    FORMAT,
    Change,
    Checkpoint,
    IoRecord,
    Op,
    PayloadRef,
    Task,
    locate,
)
from durable_graph.encryption import ThreadCipher, seal_io
from durable_graph.encryption import seal_change as seal_inline
from durable_graph.part_chunks import INLINE_PART_BYTES, chunked_part, sized_change, stored_change
from durable_graph.part_salts import salt_io
from durable_graph.payloads import offload
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.salted_parts import new_salts
from durable_graph.sealed_fields import SEALED_IN
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.state import FieldChange

KEEP_EVERY = 64  # steps; bounds how far back a cold read folds for fields that do not grow
KEEP_MAX_ITEMS = 64  # a list or dict longer than this is never re-set whole (it is what grows)
KEEP_MAX_BYTES = 4096
INLINE_TASKS = 64  # a longer task list (a fan-out) lives in the payload store
INLINE_IO = 64
INLINE_LIST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Base:
    """The parts of checkpoint `k` that running and sealing step `k+1` need; built from a
    stored record or from a transition message that carried it."""

    thread_id: str
    step: int
    hash: str
    values: dict[str, Any]
    next: list[Task]
    resume: dict[str, list[Any]]
    digests: dict[str, str] = field(default_factory=dict)
    anchors: dict[str, int] = field(default_factory=dict)
    chunks: dict[str, PayloadRef] = field(default_factory=dict)
    format: int = FORMAT
    anchor: int = 0  # the record's read hint: a later record never folds from further back

    @classmethod
    def of(cls, checkpoint: Checkpoint, values: dict[str, Any] | None = None) -> Base:
        return cls(
            thread_id=checkpoint.thread_id,
            step=checkpoint.step,
            hash=checkpoint.hash,
            values=checkpoint.values if values is None else values,
            next=list(checkpoint.next),
            resume=dict(checkpoint.resume),
            digests=checkpoint.digests,
            anchors=checkpoint.anchors,
            chunks=checkpoint.chunks,
            format=checkpoint.format,
            anchor=checkpoint.anchor,
        )


def seal(
    *,
    step: int,
    values: dict[str, Any],
    changed: Mapping[str, FieldChange] | None,
    previous: Base | None,
    next_tasks: Sequence[Task],
    io: Sequence[IoRecord],
    payloads: PayloadStore,
    threshold: int,
    max_value_bytes: int,
    fields: Mapping[str, Any],
    cipher: ThreadCipher | None = None,
    fresh: list[PayloadRef] | None = None,
) -> Checkpoint:
    """The sealed format-2 record of `step`. `changed` is what the step did to the state
    (None: nothing); `fields` are the record's other fields (thread_id, source, status...).
    With `cipher` (the thread's data key: encryption on), inline values and io responses are
    sealed with it, and `payloads` is the thread's sealing view (`encryption.py`). `fresh`
    collects the chunks of io responses kept whole (`chunked_part`)."""
    # A fold never crosses into another thread (a fork's origin) or format: step 0, and the
    # first record over a format-1 one, set every field.
    rebase = (
        step == 0
        or previous is None
        or previous.format < FORMAT
        or set(previous.digests) != set(previous.values)
    )
    digests: Mapping[str, str] = {} if rebase or previous is None else previous.digests
    anchors = {} if rebase or previous is None else dict(previous.anchors)
    chunks = {} if rebase or previous is None else dict(previous.chunks)
    wanted: dict[str, tuple[Op, Any]]  # what each changed field's chunk holds: (op, value)
    if rebase:
        wanted = {name: ("set", value) for name, value in values.items()}
    else:
        wanted = {name: (c.op, c.value) for name, c in (changed or {}).items()}
    kept: dict[str, Change] = {}
    for name, value in values.items():
        if name in wanted or step - anchors.get(name, step) < KEEP_EVERY:
            continue
        if name in chunks:  # its whole value is one chunk already stored: keep by reference
            # Its field digest is the chunk's `d` (a sealed chunk's address is not).
            kept[name] = Change(op="keep", d=digests[name], ref=chunks[name])
        elif _small(value):
            wanted[name] = ("keep", value)
    # The step's salts in one draw: one for each change, and one for each io record without.
    salts = iter(new_salts(len(wanted) + sum(r.s is None for r in io)))
    # Every chunk is sealed and sized before any is written: a refused step leaves nothing.
    sealed = {
        name: sized_change(name, op, value, max_value_bytes, next(salts))
        for name, (op, value) in wanted.items()
    }
    changes = {
        name: stored_change(change, data, payloads, threshold)
        for name, (change, data) in sealed.items()
    }
    plain = changes
    if cipher is not None:
        changes = {
            name: seal_inline(c, sealed[name][1], cipher) if c.inline else c
            for name, c in changes.items()
        }
    changes.update(kept)
    after = advance_all(digests, changes)
    for name, change in changes.items():
        if change.op in ("set", "keep"):
            anchors[name] = step
        elif change.op == "del":
            anchors.pop(name, None)
        whole_chunk = change.op in ("set", "keep") and change.ref is not None
        if whole_chunk and change.ref is not None:
            chunks[name] = change.ref
        else:
            chunks.pop(name, None)
    tasks = list(next_tasks)
    lists = payloads
    if cipher is None:
        stored_io = [
            _with_response(r, _offloaded(r, payloads, threshold, max_value_bytes, fresh))
            for r in io
        ]
    else:
        stored_io = [
            _sealed_io(r, payloads, threshold, max_value_bytes, cipher, plain, fresh) for r in io
        ]
        lists = raw_payloads(payloads)  # task and io lists: readable without the key
    stored_io = [salt_io(r, next(salts) if r.s is None else None) for r in stored_io]
    # Built without validation: every part is already a model or engine-made JSON (the state
    # was validated field by field, the tasks and routes are models), and validating the whole
    # record again was a third of sealing's time. `values` goes in as the very object the
    # state model cache knows (`StateSchema.to_model`).
    # One dict, which becomes the record's own (`built`): every field given, no defaults.
    return Checkpoint.built_sealed(
        {
            "values": values,
            "format": FORMAT,
            "step": step,
            "changes": changes,
            "root": state_root(after),
            "digests": after,
            "anchors": anchors,
            "chunks": chunks,
            # Anchors only move forward, so the previous hint (a snapshot's step, when the
            # store wrote one: backends/snapshots.py) is still a valid place to fold from.
            "anchor": max(
                min(anchors.values(), default=step),
                -1 if rebase or previous is None else previous.anchor,
            ),
            "next": tasks,
            "next_ref": _outside(tasks, INLINE_TASKS, lists),
            "io": stored_io,
            "io_ref": _outside(stored_io, INLINE_IO, lists),
            "prev_hash": previous.hash if previous is not None else ZERO_HASH,
            "snap": None,
            "io_in": {},
            "hash": "",
            **fields,
        }
    )


def _sealed_io(
    record: IoRecord,
    payloads: PayloadStore,
    threshold: int,
    max_value_bytes: int,
    cipher: ThreadCipher,
    changes: Mapping[str, Change],
    fresh: list[PayloadRef] | None = None,
) -> IoRecord:
    """An io record as an encrypted thread stores and hashes it: a response the step also put
    into the state (an LLM answer appended to the messages) as a pointer to that change,
    `{"$sealed_in": [field, i]}` (the value is sealed once, in the change); one whose JSON is
    over the offload threshold as a sealed chunk, `{"$payload": ref}` (the ref in the clear);
    any other one sealed inline. Its `response_sha256` is the digest of that stored form (a
    digest of the plaintext would let anyone confirm a guessed answer)."""
    if record.response is None:
        return record
    path = locate(dict(changes), record.response)
    if path is not None:
        pointer = {SEALED_IN: path}
        return record.model_copy(update={"response": pointer, "response_sha256": digest(pointer)})
    # Over the offload threshold the whole response is one sealed chunk, named in the clear
    # (`sealed_fields.is_sealed_part`): no ref hides inside a box from the reference index.
    bound = min(threshold, INLINE_PART_BYTES)
    whole = chunked_part(record.response, payloads, max_value_bytes, record.name, fresh, bound)
    if whole is not record.response:
        return record.model_copy(update={"response": whole, "response_sha256": digest(whole)})
    boxed = seal_io(whole, cipher)
    return record.model_copy(update={"response": boxed, "response_sha256": digest(boxed)})


def _offloaded(
    record: IoRecord,
    payloads: PayloadStore,
    threshold: int,
    max_value_bytes: int,
    fresh: list[PayloadRef] | None,
) -> Any:
    """An io record's response as a thread in the clear keeps it: itself, or in a chunk."""
    whole = chunked_part(record.response, payloads, max_value_bytes, record.name, fresh)
    return offload(whole, payloads, threshold)


def _with_response(record: IoRecord, response: Any) -> IoRecord:
    return record if response is record.response else record.copied(response=response)


def _outside(
    items: Sequence[Task] | Sequence[IoRecord], limit: int, payloads: PayloadStore
) -> PayloadRef | None:
    """A list of more than `limit` items, or of more than INLINE_LIST_BYTES, goes to the
    payload store (a few fan-out tasks with big arguments weigh as much as many small ones)."""
    if not items:
        return None
    if len(items) <= limit:
        # Only a task's argument or an io response can be big; the rest is a few ids.
        heavy = [item.arg if isinstance(item, Task) else item.response for item in items]
        if json_size_within(heavy, INLINE_LIST_BYTES - 512 * len(items)):
            return None
    dumped = [item.model_dump(mode="json") for item in items]
    return payloads.put(list_bytes(dumped), LIST_CONTENT_TYPE)


def _small(value: Any) -> bool:
    """Cheap first: a long list or dict is never small, whatever its items weigh, nor is a
    short one whose JSON is clearly over the bound (a few documents of megabytes: looked at
    only as far as the bound, never `repr`ed whole at every step)."""
    if isinstance(value, (list, dict)) and len(value) > KEEP_MAX_ITEMS:
        return False
    if isinstance(value, str):
        return len(value) <= KEEP_MAX_BYTES
    if not json_size_within(value, 4 * KEEP_MAX_BYTES):
        return False
    return len(repr(value)) <= KEEP_MAX_BYTES


__all__ = ["KEEP_EVERY", "Base", "seal"]
