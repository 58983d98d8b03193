"""The checkpoint record (DESIGN.md §4; the contract is `docs/record-format.md`): immutable,
hash-chained, self-describing.

`hash = sha256(RFC 8785 canonical JSON of hash_body())`; `prev_hash` links to the previous step
(all zeros at step 0). In format 2 the body holds the step's changes by salted digest and the
state root over every field's digest, so a record commits to the whole state while hashing and
storing only what its step changed; format-1 records (whole `values`) keep verifying as written.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import Field, PrivateAttr

from durable_graph.canonical import (
    ZERO_HASH,
    canonical_bytes,
    compact_json,
    digest,
    plain_json,
    sha256_hex,
)

# The record's parts and the records beside the chain are imported from here too (they were
# defined here), as are `locate` and `same`.
from durable_graph.head_records import ThreadRecord as ThreadRecord
from durable_graph.head_records import VersionedRecord as VersionedRecord
from durable_graph.io_pointers import at
from durable_graph.io_pointers import locate as locate
from durable_graph.io_pointers import same as same
from durable_graph.record_parts import TERMINAL as TERMINAL
from durable_graph.record_parts import Actor as Actor
from durable_graph.record_parts import Approval as Approval
from durable_graph.record_parts import Change as Change
from durable_graph.record_parts import ErrorInfo as ErrorInfo
from durable_graph.record_parts import GraphRef as GraphRef
from durable_graph.record_parts import InterruptInfo as InterruptInfo
from durable_graph.record_parts import IoRecord as IoRecord
from durable_graph.record_parts import Op as Op
from durable_graph.record_parts import ParentRef as ParentRef
from durable_graph.record_parts import PayloadRef as PayloadRef
from durable_graph.record_parts import Record
from durable_graph.record_parts import RouteDecision as RouteDecision
from durable_graph.record_parts import RuleInfo as RuleInfo
from durable_graph.record_parts import SignOffRecord as SignOffRecord
from durable_graph.record_parts import Source as Source
from durable_graph.record_parts import Status as Status
from durable_graph.record_parts import Task as Task
from durable_graph.salted_parts import commit_parts, part_digest

FORMAT = 2
# The stored rows of the records serialised (a record's size check and its store's write share
# one serialisation); keyed by identity, checked by identity, each row dropped with its record.
# The record is held weakly: a record holds its whole state, and 32 states of a long thread kept
# alive here were walked by every garbage collection. Not the last 32 rows only: a group commit
# builds its whole batch (100 steps in the benchmark) before it writes any, and serialised 2 of
# the 4 steps of each approval thread twice.
_STORED_ROWS_MOST = 1024
_STORED_ROWS: dict[int, tuple[weakref.ref[Checkpoint], str]] = {}
# Never in a format-2 row: what a reader materialises again (`Checkpoint.stored`).
_NOT_STORED = frozenset({"values", "digests", "anchors", "chunks"})
# Every field a format-1 record had: its hash covered exactly these (but `hash`).
V1_FIELDS = frozenset(
    {
        "thread_id", "step", "parent", "source", "nodes", "values", "next", "route",
        "interrupt", "resume", "io", "status", "error", "graph", "created_at", "duration_ms",
        "attempt", "actor", "prev_hash",
    }
)  # fmt: skip
# Format 2 hashes these as they are, `changes` by their committed part, and `next`/`io` only
# when they are kept in the record (else their payload refs, which carry their sha256).
V2_PLAIN = frozenset(
    {
        "format", "thread_id", "step", "parent", "source", "nodes", "root", "route",
        "interrupt", "resume", "status", "error", "graph", "created_at", "duration_ms",
        "attempt", "actor", "prev_hash", "next_ref", "io_ref",
    }
)  # fmt: skip


class Checkpoint(Record):
    """One step of a thread, as callers see it: `values` is the whole logical state.

    In format 2 (`docs/record-format.md`) the hash covers `changes` (the step's per-field
    changes, by digest) and `root` (the state root over every field digest), never `values`.
    `values`, `digests`, `anchors` (per field, the step it was last set) and `chunks` (per
    field whose whole value is one stored chunk, its ref) are materialised
    by the store from the changes, neither stored nor hashed, so a step hashes and writes what
    it changed, not what the state weighs. A long task or io list lives in the payload store
    (`next_ref`, `io_ref`) and is filled in on read. `anchor` is a read hint: the step a cold
    read folds from; `snap`, another, the snapshot of the state after this step
    (`backends/snapshots.py`) when the store wrote one here.
    """

    format: int = 1
    thread_id: str
    step: int
    parent: ParentRef | None = None
    source: Source
    nodes: list[str] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    changes: dict[str, Change] = Field(default_factory=dict)
    root: str = ""
    digests: dict[str, str] = Field(default_factory=dict)
    anchors: dict[str, int] = Field(default_factory=dict)
    chunks: dict[str, PayloadRef] = Field(default_factory=dict)
    anchor: int = 0
    snap: PayloadRef | None = None
    next: list[Task] = Field(default_factory=list)
    next_ref: PayloadRef | None = None
    route: list[RouteDecision] = Field(default_factory=list)
    interrupt: InterruptInfo | None = None
    resume: dict[str, list[Any]] = Field(default_factory=dict)
    # Per task, the salt of each resume value ("" where it has none: erased); stored, never
    # hashed (salted_parts.py).
    resume_s: dict[str, list[str]] = Field(default_factory=dict)
    io: list[IoRecord] = Field(default_factory=list)
    io_ref: PayloadRef | None = None
    # Stored form only: io responses the step also put into the state, kept once, as pointers
    # (io index -> [field] or [field, item index]) into `changes`.
    io_in: dict[str, list[Any]] = Field(default_factory=dict)
    status: Status
    error: ErrorInfo | None = None
    graph: GraphRef
    created_at: str
    duration_ms: float = 0.0
    attempt: int = 1
    actor: Actor
    # A decision under an `ApprovalRule`: every approval, hashed (approval_record.py).
    signoff: SignOffRecord | None = None
    prev_hash: str = ZERO_HASH
    hash: str = ""
    # The whole-part chunks the sealing of this very object wrote (`with_fresh`), which its
    # commit deletes if the append loses (`orphans.lost_chunks`): neither stored nor hashed,
    # and a record read back from the store has none.
    _fresh: tuple[PayloadRef, ...] = PrivateAttr(default=())

    def with_fresh(self, refs: Sequence[PayloadRef]) -> Checkpoint:
        """This record, remembering `refs` as the chunks its sealing wrote (`step_sealer.py`)."""
        # Into the private attributes directly: pydantic's `__setattr__` checks cost more than
        # the step's other bookkeeping (a private attribute may be set on a frozen model).
        self.__pydantic_private__["_fresh"] = tuple(refs)  # type: ignore[index]
        return self

    @property
    def fresh(self) -> tuple[PayloadRef, ...]:
        """The chunks this record's sealing wrote (`with_fresh`); none on a record read."""
        return self._fresh

    def hash_body(self) -> dict[str, Any]:
        """Exactly what the record's digest covers (every field but `hash` in format 1)."""
        if self.format == 1:
            body = self.model_dump(mode="json", include=set(V1_FIELDS))
            for task in body["next"]:
                task.pop("done_at", None)  # a format-2 field, never set in format 1
        else:
            include = set(V2_PLAIN)
            if self.next_ref is None:
                include.add("next")
            if self.io_ref is None:
                include.add("io")
            if self.signoff is not None:  # absent before approvals were chained: same hash
                include.add("signoff")
            body = self.model_dump(mode="json", include=include)
            body["changes"] = {name: change.committed() for name, change in self.changes.items()}
            commit_parts(body, self.resume_s)  # salted parts by their digests
        duration = body.get("duration_ms")
        if type(duration) is float and duration.is_integer() and abs(duration) < 2**53:
            # Canonically the same number ("0", not "0.0"), written as an int here so the
            # canonical encoder need not copy the whole body to rewrite one float.
            body["duration_ms"] = int(duration)
        return body

    def compute_hash(self, plain: bool | None = None) -> str:
        """The record's digest; `plain`: `_plain()`, when the caller has it already."""
        if plain is None:
            plain = self._plain()
        return sha256_hex(canonical_bytes(self.hash_body(), plain=plain))

    def _plain(self) -> bool:
        """Whether this format-2 record's hash body and stored row can be written without the
        walk (`canonical.plain_json`): all but its free-form parts are typed (strings, safe
        integers, `duration_ms`), and those are checked here. A field typed `Any` must be one
        of them (tests/unit/test_record_fast_writer.py holds this list to the models)."""
        duration, interrupt = self.duration_ms, self.interrupt
        if self.format < 2 or not (
            type(duration) is float
            and ((duration.is_integer() and abs(duration) < 2**53) or 1e-4 <= abs(duration) < 1e16)
        ):
            return False
        parts = [
            *[change.v for change in self.changes.values()],
            *[task.arg for task in self.next],
            *[record.response for record in self.io],
            None if interrupt is None else interrupt.payload,
            self.resume,
            self.io_in,
        ]
        return plain_json(parts, self.changes)

    def stored(self) -> Checkpoint:
        """The form a store keeps: without what a reader materialises again (`values`,
        `digests`, `anchors`; `next` and `io` when they live in the payload store)."""
        if self.format == 1:
            return self
        update: dict[str, Any] = {"values": {}, "digests": {}, "anchors": {}, "chunks": {}}
        if self.next_ref is not None:
            update["next"] = []
        if self.io_ref is not None:
            update["io"] = []
        else:
            io = list(self.io)
            pointers: dict[str, list[Any]] = {}
            for index, derived, path in _io_kept_once(self.io, self.changes):
                kept: dict[str, Any] = {}
                if derived:
                    kept["response_sha256"] = ""  # derived again on read
                if path is not None:
                    pointers[str(index)] = path
                    kept["response"] = None
                io[index] = io[index].model_copy(update=kept)
            update["io"] = io
            if pointers:
                update["io_in"] = pointers
        return self.model_copy(update=update)

    def to_stored_json(self) -> str:
        """The row a store writes: the stored form as compact JSON, defaults left out, and a
        format-2 `parent` left out when it is the previous step of the same thread (what it
        always is after step 0; `from_stored_json` derives it again, and the hash checks it)."""
        cached = _STORED_ROWS.get(id(self))
        if cached is not None and cached[0]() is self:
            return cached[1]
        return self._stored_json(self._plain())

    def _stored_json(self, plain: bool) -> str:
        """`to_stored_json`, written and cached (`plain`: `_plain()`): `stored()` dumped
        without its defaults, taken from one dump of this record (not a copy of it dumped)."""
        if self.format == 1:  # stored as it is
            row = self.model_dump(mode="json", exclude_defaults=True)
        else:
            row = self._row_of(self._dumped())
        row["format"] = self.format
        text = compact_json(row, plain=plain)
        if len(_STORED_ROWS) >= _STORED_ROWS_MOST:
            _STORED_ROWS.clear()
        key = id(self)
        _STORED_ROWS[key] = (weakref.ref(self, lambda _: _STORED_ROWS.pop(key, None)), text)
        return text

    def _dumped(self) -> dict[str, Any]:
        """This format-2 record dumped as JSON without its defaults, nor what `stored()`
        leaves out of it (what a reader materialises)."""
        exclude = set(_NOT_STORED)
        if self.next_ref is not None:
            exclude.add("next")
        if self.io_ref is not None:
            exclude.add("io")
        return self.model_dump(mode="json", exclude_defaults=True, exclude=exclude)

    def _row_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row`, this format-2 record's `_dumped()`, made in place what `stored()` dumps
        without its defaults (its io kept once), without a parent that is the previous step."""
        if self.io_ref is None:
            pointers: dict[str, list[Any]] = {}
            for index, derived, path in _io_kept_once(self.io, self.changes):
                kept = row["io"][index]
                if derived:
                    kept.pop("response_sha256", None)  # derived again on read
                if path is not None:
                    pointers[str(index)] = path
                    kept.pop("response", None)
            if pointers:
                row["io_in"] = pointers
        parent = self.parent
        if (
            self.step > 0
            and parent is not None
            # `parent == self._previous_ref()`, without building a model to compare with
            and (parent.thread_id, parent.step, parent.hash)
            == (self.thread_id, self.step - 1, self.prev_hash)
        ):
            row.pop("parent", None)
        return row

    @classmethod
    def from_stored_json(cls, text: str | bytes) -> Checkpoint:
        """Parse a stored row (raises pydantic's `ValidationError` on a malformed one)."""
        record = cls.model_validate_json(text)
        if record.format >= 2 and record.step > 0 and record.parent is None:
            # Filled into the record just parsed (no one else holds it yet), not copied.
            record.__dict__["parent"] = record._previous_ref()
            record.__pydantic_fields_set__.add("parent")
        return record

    def _previous_ref(self) -> ParentRef:
        return ParentRef(thread_id=self.thread_id, step=self.step - 1, hash=self.prev_hash)

    def with_io_restored(self) -> Checkpoint:
        """Undo `stored()`'s io pointers (a malformed pointer restores None: the hash fails)."""
        if not self.io_in and all(r.response_sha256 for r in self.io):
            return self
        io = list(self.io)
        for index, path in self.io_in.items():
            position = int(index) if index.isdigit() else -1
            if 0 <= position < len(io):
                io[position] = io[position].model_copy(update={"response": at(self.changes, path)})
        io = [
            r.model_copy(update={"response_sha256": part_digest(r.s, r.response)})
            if r.s is not None
            else r
            if r.response_sha256
            else r.model_copy(update={"response_sha256": digest(r.response)})
            for r in io
        ]
        return self.model_copy(update={"io": io, "io_in": {}})

    def sealed(self) -> Checkpoint:
        """Return a copy with `hash` filled in; the only way records get their hash."""
        return self.model_copy(update={"hash": self.compute_hash()})

    @classmethod
    def built_sealed(cls, fields: dict[str, Any]) -> Checkpoint:
        """`built(fields).sealed()` (`hash` among `fields` is ignored), without the copy:
        the hash is filled into the record `built` just made, which no one else holds yet.
        Its stored row is written here too (`to_stored_json`, cached: the size check and the
        append that follow take it from there), so its free-form parts are walked once
        (`_plain`) for both."""
        record = cls.built(fields)
        plain = record._plain()
        record.__dict__["hash"] = record.compute_hash(plain)
        record._stored_json(plain)
        return record

    @classmethod
    def built(cls, fields: dict[str, Any]) -> Checkpoint:
        """A record of `fields` (every one, and nothing else: else a `KeyError`), unvalidated,
        as `model_construct` builds it without its per-field lookups and copies (most of its
        time): for parts that are already models or engine-made JSON (`sealing.seal`).
        `fields` becomes the record's own dict (the caller made it for this record)."""
        names = cls.__pydantic_fields__.keys()
        if fields.keys() != names:
            raise KeyError(f"not the record's fields: {sorted(names ^ fields.keys())}")
        record = cls.__new__(cls)
        object.__setattr__(record, "__dict__", fields)
        object.__setattr__(record, "__pydantic_fields_set__", set(fields))
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", {"_fresh": ()})
        return record


def _io_kept_once(
    io: Sequence[IoRecord], changes: Mapping[str, Change]
) -> Iterator[tuple[int, bool, list[Any] | None]]:
    """How a format-2 row keeps its io records once: for each one it keeps differently from
    the record, its index, whether its `response_sha256` is left to be derived again on read
    (salted, or the plain digest of its response), and the path of the change that holds its
    response (the step also put it into the state: kept once, there), or None."""
    for index, record in enumerate(io):
        if record.response is None:
            continue
        derived = record.s is not None or record.response_sha256 == digest(record.response)
        path = locate(changes, record.response)
        if derived or path is not None:
            yield index, derived, path
