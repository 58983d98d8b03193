"""Erasing what a record holds besides its state (`erase --parts`): task arguments (what a
`Send` carried), interrupt payloads, resume values and error messages. Recorded io responses
are the fifth part (`io`), erased by `erasure.py` itself, which also reaches io responses kept
in an io list payload.

These parts are in the record's hash body as they are stored (in the clear, or sealed with
encryption at rest on, `sealed_fields.py`), without a salt of their own. Erasing one therefore
changes what the record's hash covers, as erasing an io response does: the erasure record
attests the step (the hash it had and the digest of its erased body, `erasure_record.py`), and
names each part erased (`parts`: `{step: ["arg:<task id>", "interrupt", "resume:<task id>",
"error"]}`), so `verify` accepts the step and lists them, and any other edit still fails.

What a row keeps in place of an erased part: the marker `{"$erased": {"step": N}}` for a JSON
value (an argument, the payload, each resume value), the string `"$erased"` for an error
message. A task list kept in the payload store (`next_ref`) is written again with the markers
and the row points at the new list. Readers (`decorate`) show the marker with who
erased it and when, as for an erased state value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from durable_graph.checkpoint import (
    Checkpoint,
    ErrorInfo,
    InterruptInfo,
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
from durable_graph.ports import PayloadStore
from durable_graph.sealed_fields import (
    ARG_AAD,
    INTERRUPT_AAD,
    RESUME_AAD,
    is_sealed_part,
    is_sealed_text,
)

PARTS = ("args", "interrupts", "resume", "errors", "io")
ERASED_TEXT = "$erased"  # an erased error message, as its row keeps it
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

    def present(value: Any) -> bool:
        return (
            value is not None
            and not is_erased(value)
            and not (keep_sealed and is_sealed_part(value))
        )

    def gone(value: Any, aad: bytes) -> dict[str, Any]:
        """The marker in place of `value`; what `value` named goes too."""
        if is_sealed_io(value) and cipher is not None:
            value = open_value(value, cipher, aad)
        if not is_sealed_io(value):
            replaced.extend(collect_refs(value).values())
        return stored_marker(step)

    if "args" in parts and any(present(t.arg) for t in full.next):
        tasks = []
        for task in full.next:
            if present(task.arg):
                names.append(f"arg:{task.id}")
                task = task.model_copy(update={"arg": gone(task.arg, ARG_AAD)})
            tasks.append(task)
        if row.next_ref is not None:
            update["next_ref"] = lists([t.model_dump(mode="json") for t in tasks])
            replaced.append(row.next_ref)
        else:
            update["next"] = tasks
    interrupt = row.interrupt
    if "interrupts" in parts and interrupt is not None and present(interrupt.payload):
        names.append("interrupt")
        payload = gone(interrupt.payload, INTERRUPT_AAD)
        update["interrupt"] = interrupt.model_copy(update={"payload": payload})
    if "resume" in parts:
        resume = dict(row.resume)
        for task_id, values in row.resume.items():
            if any(present(v) for v in values):
                names.append(f"resume:{task_id}")
                resume[task_id] = [gone(v, RESUME_AAD) if present(v) else v for v in values]
        if resume != row.resume:
            update["resume"] = resume
    error = row.error
    if "errors" in parts and error is not None and _message_present(error, keep_sealed):
        names.append("error")
        update["error"] = error.model_copy(update={"message": ERASED_TEXT})
    return (row.model_copy(update=update) if update else row), names, replaced


def _message_present(error: ErrorInfo, keep_sealed: bool) -> bool:
    text = error.message
    return text != ERASED_TEXT and not (keep_sealed and is_sealed_text(text))


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
        update["interrupt"] = was.model_copy(update={"payload": now.payload})
    if head.error is not None and row.error is not None and head.error != row.error:
        update["error"] = head.error.model_copy(update={"message": row.error.message})
    return head.model_copy(update=update) if update else None


# ---------------------------------------------------------------------------- reading


def _stored_marker(value: Any) -> bool:
    return is_erased(value) and "by" not in value[ERASED]


def has_erased_parts(record: Checkpoint | ThreadRecord) -> bool:
    """Whether `record` holds an erased part as its row keeps it (a cheap test)."""
    interrupt, error = record.interrupt, record.error
    if interrupt is not None and _stored_marker(interrupt.payload):
        return True
    if error is not None and error.message == ERASED_TEXT:
        return True
    if isinstance(record, ThreadRecord):
        return False
    return any(_stored_marker(t.arg) for t in record.next) or any(
        _stored_marker(v) for values in record.resume.values() for v in values
    )


def erased_part_names(record: Checkpoint, payloads: PayloadStore | None = None) -> list[str]:
    """The parts of a stored record that are erased (what `verify` checks are named by an
    erasure record and lists). A task list kept in the payload store and not read with the
    record (a bundle's records) is read from `payloads`; one that cannot be read is the
    `payload` check's to report."""
    tasks = record.next
    if record.next_ref is not None and not tasks and payloads is not None:
        try:
            tasks = [Task.model_validate(t) for t in json.loads(payloads.get(record.next_ref))]
        except (PayloadCorrupted, ValueError):
            tasks = []
    names = [f"arg:{t.id}" for t in tasks if is_erased(t.arg)]
    if record.interrupt is not None and is_erased(record.interrupt.payload):
        names.append("interrupt")
    names += [f"resume:{k}" for k, vs in record.resume.items() if any(map(is_erased, vs))]
    if record.error is not None and record.error.message == ERASED_TEXT:
        names.append("error")
    return names


def decorate(record: _Record, lookup: Lookup) -> _Record:
    """`record` with each erased part's marker saying who erased it and when (`lookup`: the
    erasure record naming a (step, part)), and an erased error message as a sentence."""
    if not has_erased_parts(record):
        return record
    step = record.step if isinstance(record, Checkpoint) else record.head_step

    def marker(value: Any, name: str) -> Any:
        return erased_marker(step, lookup(step, name)) if _stored_marker(value) else value

    update: dict[str, Any] = {}
    interrupt: InterruptInfo | None = record.interrupt
    if interrupt is not None and _stored_marker(interrupt.payload):
        payload = marker(interrupt.payload, "interrupt")
        update["interrupt"] = interrupt.model_copy(update={"payload": payload})
    error = record.error
    if error is not None and error.message == ERASED_TEXT:
        text = describe_erased(erased_marker(step, lookup(step, "error")))
        update["error"] = error.model_copy(update={"message": f"(the message is {text})"})
    if isinstance(record, Checkpoint):
        update["next"] = [
            t.model_copy(update={"arg": marker(t.arg, f"arg:{t.id}")}) for t in record.next
        ]
        update["resume"] = {
            k: [marker(v, f"resume:{k}") for v in vs] for k, vs in record.resume.items()
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
