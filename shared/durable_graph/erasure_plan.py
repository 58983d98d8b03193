"""What an erasure will do, computed before anything changes (`erasure.py` does it).

`plan_erasure` walks the thread's rows and decides, step by step, which state changes lose
their salt and value, which io responses and other parts (`erasure_parts.py`) go, which stored
rows are rewritten, which fan-out result rows and `ctx.step` records are scrubbed, which
snapshots are dropped, and which payload objects become candidates for deletion;
`unreferenced` keeps of those candidates only the ones no other thread (nor a kept step of
this one) still refers to. Nothing here writes: a plan that finds nothing to do writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.records import LIST_CONTENT_TYPE, list_bytes
from durable_graph.backends.snapshots import SNAPSHOT_CONTENT_TYPE
from durable_graph.changes import CHUNK_CONTENT_TYPE
from durable_graph.checkpoint import Change, Checkpoint, PayloadRef
from durable_graph.clock import Clock
from durable_graph.encryption import (
    ThreadCipher,
    is_sealed,
    is_sealed_io,
    open_io,
    sealed_type,
)
from durable_graph.erasure_parts import ListWriter, erase_parts
from durable_graph.fanin import done_key
from durable_graph.payloads import collect_refs
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.references import References, read_snapshot_refs, references
from durable_graph.saved_objects import Chunks, change_value, chunk_reader, saved_refs
from durable_graph.sealed_fields import is_pointer, is_sealed_part

FORMAT_1 = (
    "a format-1 record (written by an earlier release) hashes its whole state in the clear: "
    "its values cannot be erased without breaking the chain"
)
UNCHECKED = (
    "not deleted: a thread could not be read to check that it does not share this "
    "content-addressed object"
)
# Objects whose bytes include a salt or salted digests, so that no other thread can hold them:
# a change's chunk, a snapshot. Anything else content-addressed may be shared.
SALTED = frozenset({CHUNK_CONTENT_TYPE, SNAPSHOT_CONTENT_TYPE})


@dataclass
class Plan:
    """What an erasure will do, computed before anything changes."""

    rows: list[Checkpoint] = field(default_factory=list)  # stored rows to rewrite
    steps: dict[str, list[str]] = field(default_factory=dict)
    candidates: dict[str, PayloadRef] = field(default_factory=dict)  # payloads it may delete
    kept: list[dict[str, Any]] = field(default_factory=list)
    io: dict[str, list[int]] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)  # step -> other parts erased
    attested: dict[str, dict[str, str]] = field(default_factory=dict)
    done_rows: list[str] = field(default_factory=list)  # fan-out result rows to scrub
    effects: list[str] = field(default_factory=list)  # `ctx.step` result records to scrub
    lists: PayloadStore | None = None  # where task and io lists written again go (raw)
    cipher: ThreadCipher | None = None  # the thread's live data key (encryption on)
    shred: bool = False  # destroy the data key: sealed values stay, unreadable
    key_gone: bool = False  # the data key was destroyed already: sealed values are erased
    data_key: str = ""  # the id of the key-encryption key that wraps the data key
    own: set[str] | None = None  # the digests the thread refers to once erased
    index: References | None = None  # which threads refer to what (read when needed)
    saved: set[str] = field(default_factory=set)  # `ctx.save` objects among the candidates


def plan_erasure(
    plan: Plan,
    ledger: list[Checkpoint],
    rows: list[Checkpoint],
    wanted: set[str],
    steps: Callable[[Checkpoint], bool] | None,
    parts: frozenset[str],
) -> None:
    """Fill `plan` with what erasing `wanted` (and `parts`) of `rows` does at the steps that
    `steps` selects (`rows`: the stored rows; `ledger`: the same rows with their task and io
    lists, `RecordStore.ledger`)."""
    rewritten: dict[int, Checkpoint] = {}
    writer = _list_writer(plan)
    for row, full in zip(rows, ledger, strict=True):
        if steps is not None and not steps(row):
            continue
        if row.format < 2:
            plan.kept.append({"step": row.step, "why": FORMAT_1})
            continue
        changes = dict(row.changes)
        erased: list[str] = []
        for name, change in row.changes.items():
            if name not in wanted or change.op == "del" or _gone(change, plan):
                continue
            _note_saved(plan, change)
            if plan.shred and _sealed(change):
                erased.append(name)  # stays as it is: its key goes
                continue
            if change.ref is not None:
                plan.candidates[change.ref.sha256] = change.ref
            changes[name] = Change(op=change.op, d=change.d)
            erased.append(name)
        io = _plan_io(full, row, set(erased), plan, every_io="io" in parts)
        new = row.model_copy(update={"changes": changes})
        new, named, replaced = erase_parts(
            new,
            full,
            parts,
            keep_sealed=plan.shred or plan.key_gone,
            lists=writer,
            cipher=plan.cipher,
        )
        if not erased and not io and not named:
            continue
        if plan.shred and not io and not named and changes == row.changes:
            plan.steps[str(row.step)] = sorted(erased)
            continue
        if erased:
            plan.steps[str(row.step)] = sorted(erased)
        if io:
            new, gone = _without_io(full, new, io, writer)
            replaced += gone
            plan.io[str(row.step)] = io
            plan.effects += [
                f"fx#{r.task_id}#{r.name}"
                for i, r in enumerate(full.io)
                if i in io and r.kind == "step"
            ]
        if named:
            plan.parts[str(row.step)] = named
        body = new.with_io_restored().compute_hash() if io or named else row.hash
        if body != row.hash:  # parts hashed as stored (no salt): the hash body changed
            plan.attested[str(row.step)] = {"hash": row.hash, "body": body}
        for ref in replaced:
            plan.candidates[ref.sha256] = ref
        rewritten[row.step] = new
    for full in ledger:
        # A superstep run from step k (a fan-out, or one reusing earlier results) wrote step
        # k+1 from its `done#k#<task>` rows.
        fanned = len(full.next) > 1 or any(t.done_at is not None for t in full.next)
        after = str(full.step + 1)
        if fanned and (after in plan.steps or after in plan.io or after in plan.parts):
            plan.done_rows.extend(done_key(full.step, t.id) for t in full.next)
    if rewritten or plan.shred:
        _plan_snapshots(rows, rewritten, plan)
    plan.rows = [rewritten[step] for step in sorted(rewritten)]


def _chunks(plan: Plan) -> Chunks | None:
    return None if plan.lists is None else chunk_reader(plan.lists, plan.cipher)


def _note_saved(plan: Plan, change: Change) -> None:
    """The `ctx.save` objects an erased value points to become candidates for deletion
    (`saved_objects.py`; kept where another thread's values point to them too)."""
    chunks = _chunks(plan)
    if chunks is None:
        return
    saved = saved_refs(change_value(change, chunks, plan.cipher), chunks)
    plan.candidates.update(saved)
    plan.saved |= set(saved)


def _sealed(change: Change) -> bool:
    return change.e is not None or (change.ref is not None and is_sealed(change.ref))


def _gone(change: Change, plan: Plan) -> bool:
    if plan.key_gone and _sealed(change):
        return True  # its key was destroyed: nothing left of it to erase
    return change.ref is None and change.s is None and change.v is None and change.e is None


def _plan_io(
    full: Checkpoint, row: Checkpoint, erased: set[str], plan: Plan, *, every_io: bool
) -> list[int]:
    """The io responses of the step to erase: every one recorded by a step whose values are
    erased (the node most likely wrote those values from them: an LLM answer, a lookup), and
    every one when the io part is erased (`every_io`); the `$payload` objects they name become
    candidates for deletion."""
    chosen: list[int] = []
    if not (every_io or erased):
        return chosen
    for index, io in enumerate(full.io):
        if io.response is None:
            continue
        sealed = is_sealed_part(io.response) or is_pointer(io.response)
        if sealed and (plan.shred or plan.cipher is None):
            continue  # sealed: unreadable once its key is destroyed (or already gone)
        response = io.response
        if is_sealed_io(response) and plan.cipher is not None:
            response = open_io(response, plan.cipher)  # the sealed strings it names go too
        plan.candidates.update(collect_refs(response))
        saved = saved_refs(response, _chunks(plan))
        plan.candidates.update(saved)
        plan.saved |= set(saved)
        chosen.append(index)
    return chosen


def _without_io(
    full: Checkpoint, row: Checkpoint, indices: list[int], lists: ListWriter
) -> tuple[Checkpoint, list[PayloadRef]]:
    """The stored row with io responses `indices` erased: the response and its salt gone, its
    digest (salted, or, written before salts, of the response alone) kept explicitly, and no
    `io_in` pointer to it; an io list kept in the payload store is written again so
    (returned: the list the row no longer points at)."""
    listed = row.io_ref
    io = list(full.io if listed is not None else row.io)
    restored = full.with_io_restored().io
    for index in indices:
        was = full.io[index]
        # A salted response keeps its salted digest; one written before salts, what it had.
        sha = was.response_sha256 if was.s is None else restored[index].response_sha256
        io[index] = io[index].model_copy(
            update={"response": None, "s": None, "response_sha256": sha}
        )
    if listed is not None:
        ref = lists([r.model_dump(mode="json") for r in io])
        return row.model_copy(update={"io_ref": ref}), [listed]
    pointers = {k: v for k, v in row.io_in.items() if int(k) not in indices}
    return row.model_copy(update={"io": io, "io_in": pointers}), []


def _list_writer(plan: Plan) -> ListWriter:
    """Writes a task or io list again (erased items in it) where lists go: the raw payload
    store (a list is readable without the key; its items are sealed one by one)."""

    def write(items: list[dict[str, Any]]) -> PayloadRef:
        assert plan.lists is not None
        return plan.lists.put(list_bytes(items), LIST_CONTENT_TYPE)

    return write


def _plan_snapshots(rows: list[Checkpoint], rewritten: dict[int, Checkpoint], plan: Plan) -> None:
    """Snapshots copy values: every one of the thread goes, and rows that read from one fold
    from the changes again (from the first format-2 step)."""
    removed: set[int] = set()
    base = max((r.step + 1 for r in rows if r.format < 2), default=0)
    for row in rows:
        if row.snap is None:
            continue
        removed.add(row.step)
        plan.candidates[row.snap.sha256] = row.snap  # its segments: see `unreferenced`
    for row in rows:
        if row.snap is None and row.anchor not in removed:
            continue
        current = rewritten.get(row.step, row)
        rewritten[row.step] = current.model_copy(update={"snap": None, "anchor": base})


def unreferenced(
    backend: Backend,
    thread_id: str,
    plan: Plan,
    index: References | None,
    clock: Clock | None,
) -> list[PayloadRef]:
    """The candidate payloads no other thread, nor this thread's rows as rewritten, refer to.
    Snapshot segments and pages are found by reading the snapshots; other threads through
    `index` (`references.py`: one read of every thread, kept current), so a wrong delete
    cannot break another thread."""
    store = backend.checkpoints
    for ref in list(plan.candidates.values()):
        if ref.content_type in (SNAPSHOT_CONTENT_TYPE, sealed_type(SNAPSHOT_CONTENT_TYPE)):
            for inner in read_snapshot_refs(backend, ref):
                plan.candidates.setdefault(inner.sha256, inner)
    if not plan.candidates:
        return []
    after = {row.step: row for row in plan.rows}
    deep = deep_references(plan, index)
    kept_rows = [after.get(r.step, r) for r in store.ledger(thread_id)]
    # Once the key is destroyed, no sealed value the thread keeps can point anywhere.
    plan.own = references(backend, kept_rows, deep=deep, cipher=None if plan.shred else plan.cipher)
    live = set(plan.own)
    unreadable = False
    # A sealed payload is this thread's alone (sealed with its key, under a random nonce),
    # except a `ctx.save` object, whose ref a fork copies with the state (and can open).
    if any(_shareable(ref, plan) for ref in plan.candidates.values()):
        index = plan.index = index or References(clock)
        live |= index.others(backend, thread_id, plan.candidates, deep=deep)
        unreadable = index.unread(thread_id)  # it might share an object: delete only salted
    chosen: list[PayloadRef] = []
    for sha, ref in sorted(plan.candidates.items()):
        if sha in live:
            continue
        if unreadable and ref.content_type not in SALTED and _shareable(ref, plan):
            plan.kept.append({"payload": sha, "why": UNCHECKED})
            continue
        chosen.append(ref)
    return chosen


def _shareable(ref: PayloadRef, plan: Plan) -> bool:
    return not is_sealed(ref) or ref.sha256 in plan.saved


def deep_references(plan: Plan, index: References | None) -> bool:
    """Whether references must look into values: the erasure may delete a `ctx.save` object,
    or the index it keeps current does so already."""
    return bool(plan.saved) or (index is not None and index.deep)


__all__ = ["FORMAT_1", "SALTED", "Plan", "deep_references", "plan_erasure", "unreferenced"]
