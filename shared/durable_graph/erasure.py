"""Erase a thread's values without breaking its ledger (GDPR Art. 17 and its like).

Format 2 hashes every state change by a salted digest `d = sha256(JCS({"s": salt, "v":
value}))` (`docs/record-format.md` §3). Erasing a change destroys `s` and `v` (and deletes its
offloaded chunk), keeping `op` and `d`: the record's hash, the chain, the state roots and the
head signatures all still verify, and the value cannot be guessed back from its digest. Then:

- **What goes.** The named fields' changes at every step (or the given steps: retention), their
  chunks, the recorded io responses of every step whose values are erased (and the
  `$payload` objects they name), the state snapshots of the thread (`backends/snapshots.py`,
  which copy values; the rows' read hints are reset so reads fold from the changes), and the
  fan-out rows' copies of task writes. A payload object is deleted only if no other thread
  (nor a kept step of this one) still refers to it: `$payload` objects and snapshot segments
  are content-addressed and may be shared.
- **Io responses** are hashed by a salted digest since salted parts (`salted_parts.py`):
  erasing one keeps its record's hash. In records written before, they are hashed in the
  clear, so erasing one changes what its record's hash covers: the erasing process verifies
  the thread first, and the erasure record attests the step (its hash, and the digest of its
  erased body; `erasure_record.py`).
- **The other parts of a record** (`parts`: task arguments, interrupt payloads, resume values,
  error messages, io responses; `erasure_parts.py`): every one at every step when the whole
  thread is erased, the named ones with `parts=`. Salted (`salted_parts.py`) they keep their
  record's hash; written before salted parts they are hashed as stored, so the record is
  attested like an io response; a task or io list kept in the payload store is written again
  with them erased, and the thread head's copies of the interrupt and error, the `ctx.step`
  result records (`fx#`) and the fan-out rows' io lose them too.
- **The evidence.** A signed erasure record (`erasure_record.py`) is written *before* any row
  changes, naming every step and field, and every payload digest it will delete; `verify`
  accepts a missing value or payload only where such a record names it. A crash midway leaves
  a record that covers more than was done; running the erasure again finishes it under that
  record (`_unfinished`), writing no second one.

**Key destruction.** With encryption at rest on (`encryption.py`), erasing every field of a
thread at every step destroys its data key (`keys.Keyring.destroy`) after the erasure record
is written: the sealed values, chunks and io responses stay where they are, unreadable, and
every copy of them with them (backups, object versions, bundles already exported); the record
names every sealed (step, field) as erased, so `verify` accepts them. What was stored in the
clear before encryption was turned on is erased as above. Erasing some fields of an encrypted
thread cannot destroy the key the others need: it erases their sealed values as above.

Reads of an erased value return the marker `{"$erased": {"step", "by", "at", "erasure"}}`
in its place (an erased list append: one marker item where the erased items were).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.records import LIST_CONTENT_TYPE, list_bytes
from durable_graph.backends.snapshots import SNAPSHOT_CONTENT_TYPE
from durable_graph.changes import CHUNK_CONTENT_TYPE
from durable_graph.checkpoint import Actor, Change, Checkpoint, PayloadRef
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.encryption import (
    ThreadCipher,
    is_sealed,
    is_sealed_io,
    open_io,
    sealed_type,
)
from durable_graph.erasure_parts import ListWriter, erase_parts, parse_parts
from durable_graph.erasure_record import (
    ERASURE_PREFIX,
    ErasureRecord,
    load_erasures,
    parse_erasures,
    sign_erasure,
)
from durable_graph.erasure_scrubs import (
    scrub_done_rows,
    scrub_effects,
    scrub_head,
    scrub_notifications,
)
from durable_graph.errors import InvalidInput, RecordConflict, ThreadNotFound
from durable_graph.fanin import done_key
from durable_graph.payload_deletes import delete_payloads, grace_start
from durable_graph.payloads import collect_refs
from durable_graph.ports import PayloadStore
from durable_graph.references import References, read_snapshot_refs, references
from durable_graph.sealed_fields import is_pointer, is_sealed_part
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import data_key_state, verify_thread

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
class _Plan:
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


def erase(
    backend: Backend,
    thread_id: str,
    *,
    reason: str,
    actor: Actor,
    fields: Iterable[str] | None = None,
    parts: Iterable[str] | None = None,
    steps: Callable[[Checkpoint], bool] | None = None,
    clock: Clock | None = None,
    strict_fields: bool = True,
    index: References | None = None,
) -> ErasureRecord | None:
    """Erase `fields` and `parts` of `thread_id` at every step (or those for which `steps(row)`
    is true), and return the signed erasure record written (None: there was nothing left to
    erase, and nothing was written). Neither named: every field and every part (the whole
    thread). `parts` (`erasure_parts.PARTS`): "args", "interrupts", "resume", "errors", "io";
    with `fields` and no `parts`, only the fields (and the io responses of the steps whose
    values are erased), with `parts` and no `fields`, only those parts. What an interrupted
    erasure left undone is finished under its record, which is returned: erasing twice never
    writes two records for the same values. `strict_fields=False` (retention) lets `fields`
    name fields the thread does not have. `index`: which threads refer to each payload object
    (`references.py`), read once for many erasures (retention); without it, an erasure that
    may delete a shared object reads every thread once.

    Bad input (no reason, an unknown field or part, a running thread) raises `InvalidInput`
    and changes nothing. Example::

        record = erase(backend, "t1", fields=["email"], parts=["args"],
                       reason="GDPR request #88", actor=Actor(kind="cli", id="alice"))
        assert verify_thread(backend, "t1").erased
    """
    store = backend.checkpoints
    reason = reason.strip()
    if not reason:
        raise InvalidInput("say why the values are erased (--reason)", field="reason")
    every = fields is None and parts is None
    chosen = parse_parts(parts, every=every)
    rows = store.inner.list_checkpoints(thread_id, newest_first=False)
    if not rows:
        raise ThreadNotFound(thread_id)
    if rows[-1].status == "running":
        raise InvalidInput(
            f"thread {thread_id!r} is running: erase it once it is suspended, completed or "
            "failed (a worker could otherwise read the values back while they are erased)",
            field="thread_id",
        )
    wanted = _fields(rows, fields, strict=strict_fields, none=parts is not None)
    key = data_key_state(backend, thread_id)
    if key.state == "locked":
        raise InvalidInput(f"thread {thread_id!r}: {key.why}", field="thread_id")
    plan = _Plan(
        cipher=key.cipher,
        # Every value of every step: destroy the key (retention of a thread old enough, too).
        shred=key.state == "live" and every and (steps is None or all(steps(row) for row in rows)),
        key_gone=key.state in ("destroyed", "none"),
        data_key=str((key.record or {}).get("kek", "")),
        lists=raw_payloads(backend.payloads),
    )
    _plan(plan, store.ledger(thread_id), rows, wanted, steps, chosen)
    if not plan.rows and not plan.shred:
        legacy = [k["step"] for k in plan.kept if k.get("why") == FORMAT_1]
        if legacy:
            raise InvalidInput(
                f"steps {legacy} of {thread_id!r} are format-1 records, whose values are "
                "hashed in the clear and cannot be erased without breaking the chain",
                field="thread_id",
            )
        return None
    report = verify_thread(backend, thread_id)
    if not report.ok:
        raise InvalidInput(
            f"thread {thread_id!r} does not verify ({report.reason}): an erasure would vouch "
            "for records that were already altered; investigate first",
            field="thread_id",
        )
    clock = clock or SystemClock()
    since = grace_start(clock)  # before the re-check: see `payload_deletes.py`
    deletable = _unreferenced(backend, thread_id, plan, index, clock)
    existing, _ = parse_erasures(load_erasures(store, thread_id))
    record = _unfinished(existing, plan, deletable) or _write_record(
        backend,
        thread_id,
        existing,
        rows[-1],
        plan,
        deletable,
        reason,
        actor,
        clock,
        None if every else sorted(wanted),
    )
    # Rows last (then the key): until every row is rewritten, a rerun plans what is left and
    # finishes it under this record; the scrubs and deletes before them are idempotent.
    scrub_done_rows(
        backend, thread_id, plan.done_rows, plan.cipher, None if every else wanted,
        io="io" in chosen,
    )  # fmt: skip
    scrub_effects(backend, thread_id, plan.effects)
    scrub_head(backend, thread_id, plan.rows)
    scrub_notifications(backend, thread_id, plan.parts)
    delete_payloads(
        backend,
        deletable,
        since=since,
        clock=clock,
        recheck=lambda shas: (plan.index or References(clock)).others(backend, thread_id, shas),
        salted=SALTED,
    )
    for row in plan.rows:
        store.rewrite_checkpoint(row)
    if plan.shred and store.keys is not None:
        store.keys.destroy(thread_id, at=record.erased_at, erasure=record.seq)
    store.forget_thread(thread_id)
    if index is not None and plan.own is not None:
        index.replace(thread_id, plan.own)
    return record


def _fields(
    rows: list[Checkpoint], fields: Iterable[str] | None, *, strict: bool, none: bool
) -> set[str]:
    """The fields to erase (`none`: no fields named, but parts are: none of them)."""
    known = {name for row in rows if row.format >= 2 for name in row.changes}
    if fields is None:
        return set() if none else known
    wanted = {f.strip() for f in fields if f.strip()}
    if not wanted:
        raise InvalidInput("name at least one field, or none to erase every field", field="fields")
    unknown = sorted(wanted - known)
    if unknown and strict:
        raise InvalidInput(
            f"the thread has no field {', '.join(map(repr, unknown))} "
            f"(its fields: {', '.join(sorted(known))})",
            field="fields",
        )
    return wanted & known


def _plan(
    plan: _Plan,
    ledger: list[Checkpoint],
    rows: list[Checkpoint],
    wanted: set[str],
    steps: Callable[[Checkpoint], bool] | None,
    parts: frozenset[str],
) -> None:
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
        if fanned and (str(full.step + 1) in plan.steps or str(full.step + 1) in plan.io):
            plan.done_rows.extend(done_key(full.step, t.id) for t in full.next)
    if rewritten or plan.shred:
        _plan_snapshots(rows, rewritten, plan)
    plan.rows = [rewritten[step] for step in sorted(rewritten)]


def _sealed(change: Change) -> bool:
    return change.e is not None or (change.ref is not None and is_sealed(change.ref))


def _gone(change: Change, plan: _Plan) -> bool:
    if plan.key_gone and _sealed(change):
        return True  # its key was destroyed: nothing left of it to erase
    return change.ref is None and change.s is None and change.v is None and change.e is None


def _plan_io(
    full: Checkpoint, row: Checkpoint, erased: set[str], plan: _Plan, *, every_io: bool
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


def _list_writer(plan: _Plan) -> ListWriter:
    """Writes a task or io list again (erased items in it) where lists go: the raw payload
    store (a list is readable without the key; its items are sealed one by one)."""

    def write(items: list[dict[str, Any]]) -> PayloadRef:
        assert plan.lists is not None
        return plan.lists.put(list_bytes(items), LIST_CONTENT_TYPE)

    return write


def _plan_snapshots(rows: list[Checkpoint], rewritten: dict[int, Checkpoint], plan: _Plan) -> None:
    """Snapshots copy values: every one of the thread goes, and rows that read from one fold
    from the changes again (from the first format-2 step)."""
    removed: set[int] = set()
    base = max((r.step + 1 for r in rows if r.format < 2), default=0)
    for row in rows:
        if row.snap is None:
            continue
        removed.add(row.step)
        plan.candidates[row.snap.sha256] = row.snap  # its segments: see `_unreferenced`
    for row in rows:
        if row.snap is None and row.anchor not in removed:
            continue
        current = rewritten.get(row.step, row)
        rewritten[row.step] = current.model_copy(update={"snap": None, "anchor": base})


def _unreferenced(
    backend: Backend,
    thread_id: str,
    plan: _Plan,
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
    plan.own = references(backend, [after.get(r.step, r) for r in store.ledger(thread_id)])
    live = set(plan.own)
    unreadable = False
    # A sealed payload is this thread's alone (sealed with its key, under a random nonce).
    if any(not is_sealed(ref) for ref in plan.candidates.values()):
        index = plan.index = index or References(clock)
        live |= index.others(backend, thread_id, plan.candidates)
        unreadable = index.unread(thread_id)  # it might share an object: delete only salted
    chosen: list[PayloadRef] = []
    for sha, ref in sorted(plan.candidates.items()):
        if sha in live:
            continue
        if unreadable and ref.content_type not in SALTED and not is_sealed(ref):
            plan.kept.append({"payload": sha, "why": UNCHECKED})
            continue
        chosen.append(ref)
    return chosen


def _unfinished(
    existing: list[ErasureRecord], plan: _Plan, deletable: list[PayloadRef]
) -> ErasureRecord | None:
    """The erasure record already written that names everything this erasure would do: one
    whose erasure was interrupted (a crash after the record, before the rows or objects),
    which this one finishes instead of writing a second record for the same values."""
    for record in reversed(existing):
        covered = (
            all(set(names) <= set(record.steps.get(step, ())) for step, names in plan.steps.items())
            and all(set(ios) <= set(record.io.get(step, ())) for step, ios in plan.io.items())
            and all(set(p) <= set(record.parts.get(step, ())) for step, p in plan.parts.items())
            and {ref.sha256 for ref in deletable} <= set(record.payloads)
            and (bool(record.data_key) or not plan.shred)
        )
        if covered:
            return record
    return None


def _write_record(
    backend: Backend,
    thread_id: str,
    existing: list[ErasureRecord],
    head: Checkpoint,
    plan: _Plan,
    deletable: list[PayloadRef],
    reason: str,
    actor: Actor,
    clock: Clock | None,
    requested: list[str] | None,
) -> ErasureRecord:
    seq = len(existing) + 1
    record = ErasureRecord(
        thread_id=thread_id,
        seq=seq,
        erased_at=iso((clock or SystemClock()).now()),
        actor=actor,
        reason=reason,
        fields=requested,
        steps=plan.steps,
        payloads=[ref.sha256 for ref in deletable],
        kept=plan.kept,
        attested=plan.attested,
        io=plan.io,
        parts=plan.parts,
        head_step=head.step,
        head_hash=head.hash,
        prev=existing[-1].body_digest() if existing else "",
        data_key=plan.data_key if plan.shred else "",
    )
    signed = sign_erasure(record, backend.signer)
    try:
        backend.checkpoints.put_record(
            thread_id, f"{ERASURE_PREFIX}{seq}", signed.model_dump(mode="json"),
            expected_version=None,
        )  # fmt: skip
    except RecordConflict:
        raise InvalidInput(
            f"another erasure of {thread_id!r} was recorded meanwhile: run it again",
            field="thread_id",
        ) from None
    return signed


__all__ = ["erase"]
