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

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, PayloadRef
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.erasure_parts import parse_parts
from durable_graph.erasure_plan import (
    FORMAT_1,
    SALTED,
    Plan,
    deep_references,
    plan_erasure,
    unreferenced,
)
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
    scrub_mail,
    scrub_notifications,
)
from durable_graph.errors import InvalidInput, RecordConflict, ThreadNotFound
from durable_graph.payload_deletes import delete_payloads, grace_start
from durable_graph.pending_deletes import finish_deletes, schedule_deletes
from durable_graph.references import References
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import data_key_state, verify_thread


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
    finish: bool = True,
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
    may delete a shared object reads every thread once. A shared object stored within the
    grace period of `payload_deletes.py` is scheduled, not waited for (`record.scheduled`);
    `finish` (default) first deletes what an earlier erasure of the thread scheduled, once due
    (`pending_deletes.py`; retention finishes every thread's at the start of a run instead).

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
    clock = clock or SystemClock()
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
    plan = Plan(
        cipher=key.cipher,
        # Every value of every step: destroy the key (retention of a thread old enough, too).
        shred=key.state == "live" and every and (steps is None or all(steps(row) for row in rows)),
        key_gone=key.state in ("destroyed", "none"),
        data_key=str((key.record or {}).get("kek", "")),
        lists=raw_payloads(backend.payloads),
    )
    ledger = store.ledger(thread_id)
    plan_erasure(plan, ledger, rows, wanted, steps, chosen)
    if finish:  # what an earlier erasure of the thread scheduled, once its time has come
        finish_deletes(backend, clock, thread_id=thread_id, index=index)
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
    since = grace_start(clock)  # before the re-check: see `payload_deletes.py`
    deletable = unreferenced(backend, thread_id, plan, index, clock)
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
        parts=chosen,
    )  # fmt: skip
    scrub_effects(backend, thread_id, plan.effects)
    scrub_head(backend, thread_id, plan.rows)
    scrub_notifications(backend, thread_id, plan.parts)
    if wanted or "io" in chosen:  # the mail its tasks sent, built from its values
        sent = [task.id for row in ledger if steps is None or steps(row) for task in row.next]
        # Its key destroyed, sealed mail is unreadable as it is: only clear mail is rewritten.
        scrub_mail(backend, thread_id, sent, record, None if plan.shred else plan.cipher)
    waiting = delete_payloads(backend, deletable, since=since, salted=SALTED)
    # Stored moments ago (by this thread, or by a step of another that may commit): deleted
    # once the grace period is over, by whatever runs next (`pending_deletes.py`).
    scheduled = schedule_deletes(
        store, thread_id, record.seq, waiting, deep=deep_references(plan, index), clock=clock
    )
    for row in plan.rows:
        store.rewrite_checkpoint(row)
    if plan.shred and store.keys is not None:
        store.keys.destroy(thread_id, at=record.erased_at, erasure=record.seq)
    store.forget_thread(thread_id)
    if index is not None and plan.own is not None:
        index.replace(thread_id, plan.own)
    return record.with_scheduled([entry.ref.sha256 for entry in scheduled])


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


def _unfinished(
    existing: list[ErasureRecord], plan: Plan, deletable: list[PayloadRef]
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
    plan: Plan,
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
