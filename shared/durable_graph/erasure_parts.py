"""Erasing what a record holds besides its state (`erase --parts`): task arguments (what a
`Send` carried), interrupt payloads, resume values and error messages. Recorded io responses
are the fifth part (`io`), erased by `erasure.py` itself, which also reaches io responses kept
in an io list payload.

Records written since salted parts (`salted_parts.py`) hash each of these parts by a salted
digest: erasing one destroys the value and its salt and keeps its digest form (`{"$d": D}`,
an error message `"$d:" + D`), so the record's hash does not change. Records written before
hash them as stored (in the clear, or sealed with encryption at rest on, `sealed_fields.py`):
erasing one changes what the record's hash covers, as erasing an io response does, and the
erasure record attests the step (the hash it had and the digest of its erased body,
`erasure_record.py`). Either way the erasure record names each part erased (`parts`:
`{step: ["arg:<task id>", "interrupt", "resume:<task id>", "error"]}`, and `io`), so `verify`
accepts the step and lists them, and any other edit still fails.

What a row keeps in place of an erased part without a salt: the marker `{"$erased": {"step":
N}}` for a JSON value (an argument, the payload, each resume value), the string `"$erased"`
for an error message. A task list kept in the payload store (`next_ref`) is written again
with them and the row points at the new list. Readers (`decorate`) show the marker with who
erased it and when, as for an erased state value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from durable_graph.canonical import digest
from durable_graph.checkpoint import (
    Checkpoint,
    ErrorInfo,
    InterruptInfo,
    IoRecord,
    PayloadRef,
    Task,
    ThreadRecord,
)
from durable_graph.encryption import ThreadCipher, is_sealed_io, open_value
from durable_graph.erasure_record import (
    ERASED,
    ErasureRecord,
    describe_erased,
    erased_marker,
    is_erased,
)
from durable_graph.errors import InvalidInput, PayloadCorrupted
from durable_graph.payloads import collect_refs
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.salted_parts import (
    digest_form,
    is_digest_form,
    is_digest_text,
    text_digest_form,
)
from durable_graph.sealed_fields import (
    ARG_AAD,
    INTERRUPT_AAD,
    RESUME_AAD,
    is_sealed_part,
    is_sealed_text,
)

PARTS = ("args", "interrupts", "resume", "errors", "io")
ERASED_TEXT = "$erased"  # an erased error message, as its row keeps it
NULL_DIGEST = digest(None)  # a recorded None response's digest (an erased one keeps another)
_Record = TypeVar("_Record", Checkpoint, ThreadRecord)
Lookup = Callable[[int, str], ErasureRecord | None]
ListWriter = Callable[[list[dict[str, Any]]], PayloadRef]  # a task list into the payload store


def parse_parts(parts: Iterable[str] | None, *, every: bool) -> frozenset[str]:
    """The parts asked for: `parts` as given (bad names refused: `InvalidInput`, nothing
    changed), or every part when none are named and `every` (a whole-thread erasure)."""
    if parts is None:
        return frozenset(PARTS) if every else frozenset()
    wanted = {p.strip() for p in parts if p.strip()}
    if not wanted:
        raise InvalidInput(f"name at least one part ({', '.join(PARTS)})", field="parts")
    unknown = sorted(wanted - set(PARTS))
    if unknown:
        raise InvalidInput(
            f"no part {', '.join(map(repr, unknown))}: the parts are {', '.join(PARTS)}",
            field="parts",
        )
    return frozenset(wanted)


def erase_parts(
    row: Checkpoint,
    full: Checkpoint,
    parts: frozenset[str],
    *,
    keep_sealed: bool,
    lists: ListWriter,
    cipher: ThreadCipher | None = None,
) -> tuple[Checkpoint, list[str], list[PayloadRef]]:
    """The stored `row` with `parts` erased (`full`: the row with its task list loaded), the
    names of what was erased, and the payloads it no longer refers to: the task list it no
    longer points at (`lists` writes the new one) and the objects the erased values named (a
    value kept whole in a chunk, `{"$payload": ref}`; a sealed one is opened with `cipher` to
    find them). `keep_sealed`: leave sealed parts as they are (their data key is destroyed)."""
    step = row.step
    names: list[str] = []
    update: dict[str, Any] = {}
    replaced: list[PayloadRef] = []

    def present(value: Any, salt: str | None) -> bool:
        if value is None or (salt is None and (is_erased(value) or is_digest_form(value))):
            return False
        return not (keep_sealed and is_sealed_part(value))

    def gone(value: Any, aad: bytes, salt: str | None) -> dict[str, Any]:
        """What the row keeps in place of `value`: its digest form where it has a salt (the
        record's hash does not change), else the marker; what `value` named goes too."""
        kept = digest_form(salt, value) if salt is not None else stored_marker(step)
        if is_sealed_io(value) and cipher is not None:
            value = open_value(value, cipher, aad)
        if not is_sealed_io(value):
            replaced.extend(collect_refs(value).values())
        return kept

    if "args" in parts and any(present(t.arg, t.s) for t in full.next):
        tasks = []
        for task in full.next:
            if present(task.arg, task.s):
                names.append(f"arg:{task.id}")
                task = task.model_copy(update={"arg": gone(task.arg, ARG_AAD, task.s), "s": None})
            tasks.append(task)
        if row.next_ref is not None:
            update["next_ref"] = lists([t.model_dump(mode="json") for t in tasks])
            replaced.append(row.next_ref)
        else:
            update["next"] = tasks
    interrupt = row.interrupt
    if "interrupts" in parts and interrupt is not None and present(interrupt.payload, interrupt.s):
        names.append("interrupt")
        payload = gone(interrupt.payload, INTERRUPT_AAD, interrupt.s)
        update["interrupt"] = interrupt.model_copy(update={"payload": payload, "s": None})
    if "resume" in parts:
        resume, salts = dict(row.resume), dict(row.resume_s)
        for task_id, values in row.resume.items():
            own = _resume_salts(row, task_id)
            if not any(present(v, salt) for v, salt in zip(values, own, strict=True)):
                continue
            names.append(f"resume:{task_id}")
            resume[task_id] = [
                gone(v, RESUME_AAD, salt) if present(v, salt) else v
                for v, salt in zip(values, own, strict=True)
            ]
            kept = [
                "" if present(v, salt) else salt or "" for v, salt in zip(values, own, strict=True)
            ]
            salts.pop(task_id, None)
            if any(kept):
                salts[task_id] = kept
        if resume != row.resume:
            update["resume"] = resume
            update["resume_s"] = salts
    error = row.error
    if "errors" in parts and error is not None and _message_present(error, keep_sealed):
        names.append("error")
        text = ERASED_TEXT if error.s is None else text_digest_form(error.s, error.message)
        update["error"] = error.model_copy(update={"message": text, "s": None})
    return (row.model_copy(update=update) if update else row), names, replaced


def _message_present(error: ErrorInfo, keep_sealed: bool) -> bool:
    text = error.message
    if error.s is None and (text == ERASED_TEXT or is_digest_text(text)):
        return False
    return not (keep_sealed and is_sealed_text(text))


def stored_marker(step: int) -> dict[str, Any]:
    """What a row keeps in place of an erased JSON part."""
    return {ERASED: {"step": step}}


def head_after(head: ThreadRecord, row: Checkpoint) -> ThreadRecord | None:
    """The thread head with the interrupt and error of its head step as `row` (that step,
    erased) now has them; None when nothing of it changes."""
    if head.head_step != row.step:
        return None
    update: dict[str, Any] = {}
    was, now = head.interrupt, row.interrupt
    if was is not None and now is not None and was.payload != now.payload:
        update["interrupt"] = was.model_copy(update={"payload": now.payload, "s": now.s})
    if head.error is not None and row.error is not None and head.error != row.error:
        update["error"] = head.error.model_copy(
            update={"message": row.error.message, "s": row.error.s}
        )
    return head.model_copy(update=update) if update else None


# ---------------------------------------------------------------------------- reading


def _stored_marker(value: Any, salt: str | None) -> bool:
    """An erased JSON part as its row keeps it: the marker of a part erased before salts, or
    the digest form of a salted one (either without its salt)."""
    if salt is not None:
        return False
    return (is_erased(value) and "by" not in value[ERASED]) or is_digest_form(value)


def _erased_text(error: ErrorInfo) -> bool:
    text = error.message
    return error.s is None and (text == ERASED_TEXT or is_digest_text(text))


def _resume_salts(record: Checkpoint, task_id: str) -> list[str | None]:
    """The salt of each resume value of `task_id` (None: it has none)."""
    values, salts = record.resume[task_id], record.resume_s.get(task_id, [])
    return [(salts[i] or None) if i < len(salts) else None for i in range(len(values))]


def _erased_resume(record: Checkpoint, task_id: str) -> bool:
    values = record.resume[task_id]
    salts = _resume_salts(record, task_id)
    return any(_stored_marker(v, s) for v, s in zip(values, salts, strict=True))


def has_erased_parts(record: Checkpoint | ThreadRecord) -> bool:
    """Whether `record` holds an erased part as its row keeps it (a cheap test)."""
    interrupt, error = record.interrupt, record.error
    if interrupt is not None and _stored_marker(interrupt.payload, interrupt.s):
        return True
    if error is not None and _erased_text(error):
        return True
    if isinstance(record, ThreadRecord):
        return False
    return any(_stored_marker(t.arg, t.s) for t in record.next) or any(
        _erased_resume(record, k) for k in record.resume
    )


_Listed = TypeVar("_Listed", Task, IoRecord)


def _listed(payloads: PayloadStore, ref: PayloadRef, model: type[_Listed]) -> list[_Listed]:
    """A record's task or io list kept in the payload store; empty when it cannot be read,
    which is the `payload` check's to report, not this one's."""
    try:
        return [model.model_validate(item) for item in json.loads(payloads.get(ref))]
    except (PayloadCorrupted, ValueError):
        return []


def erased_part_names(record: Checkpoint, payloads: PayloadStore | None = None) -> list[str]:
    """The parts of a stored record that are erased (what `verify` checks are named by an
    erasure record and lists): `arg:<task id>`, `interrupt`, `resume:<task id>`, `error`,
    `io:<index>`. A task list kept in the payload store and not read with the
    record (a bundle's records) is read from `payloads`; one that cannot be read is the
    `payload` check's to report."""
    tasks = record.next
    if record.next_ref is not None and not tasks and payloads is not None:
        tasks = _listed(payloads, record.next_ref, Task)
    names = [f"arg:{t.id}" for t in tasks if t.s is None and _erased_json(t.arg)]
    interrupt = record.interrupt
    if interrupt is not None and interrupt.s is None and _erased_json(interrupt.payload):
        names.append("interrupt")
    names += [
        f"resume:{k}"
        for k, vs in record.resume.items()
        if any(
            s is None and _erased_json(v) for v, s in zip(vs, _resume_salts(record, k), strict=True)
        )
    ]
    if record.error is not None and _erased_text(record.error):
        names.append("error")
    io = record.io
    if record.io_ref is not None and not io and payloads is not None:
        io = _listed(payloads, record.io_ref, IoRecord)
    # An erased response keeps only its digest (`response_sha256` explicit, not that of None).
    names += [
        f"io:{i}"
        for i, r in enumerate(io)
        if r.response is None and r.s is None and r.response_sha256 not in ("", NULL_DIGEST)
    ]
    return names


def _erased_json(value: Any) -> bool:
    """Erased, as a row or a decorated read has it (a part without its salt)."""
    return is_erased(value) or is_digest_form(value)


def decorate(record: _Record, lookup: Lookup) -> _Record:
    """`record` with each erased part's marker saying who erased it and when (`lookup`: the
    erasure record naming a (step, part)), and an erased error message as a sentence."""
    if not has_erased_parts(record):
        return record
    step = record.step if isinstance(record, Checkpoint) else record.head_step

    def marker(value: Any, name: str, salt: str | None = None) -> Any:
        return erased_marker(step, lookup(step, name)) if _stored_marker(value, salt) else value

    update: dict[str, Any] = {}
    interrupt: InterruptInfo | None = record.interrupt
    if interrupt is not None and _stored_marker(interrupt.payload, interrupt.s):
        payload = marker(interrupt.payload, "interrupt")
        update["interrupt"] = interrupt.model_copy(update={"payload": payload})
    error = record.error
    if error is not None and _erased_text(error):
        text = describe_erased(erased_marker(step, lookup(step, "error")))
        update["error"] = error.model_copy(update={"message": f"(the message is {text})"})
    if isinstance(record, Checkpoint):
        update["next"] = [
            t.model_copy(update={"arg": marker(t.arg, f"arg:{t.id}", t.s)}) for t in record.next
        ]
        update["resume"] = {
            k: [
                marker(v, f"resume:{k}", s)
                for v, s in zip(vs, _resume_salts(record, k), strict=True)
            ]
            for k, vs in record.resume.items()
        }
    return record.model_copy(update=update)


__all__ = [
    "ERASED_TEXT",
    "PARTS",
    "decorate",
    "erase_parts",
    "erased_part_names",
    "has_erased_parts",
    "head_after",
    "parse_parts",
    "stored_marker",
]
