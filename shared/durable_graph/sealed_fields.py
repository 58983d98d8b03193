"""The parts of a record that hold a thread's data besides its state and io responses: task
arguments (what a `Send` carries), the interrupt payload, resume values and a failure's error
message. With encryption at rest on (`encryption.py`, `docs/record-format.md` §14) each is
sealed with the thread's data key when the step is sealed, and the record is hashed over the
sealed form, as an io response is: the chain verifies without the key, and a digest of the
plaintext (which would confirm a guessed value) is never stored.

Because the record is sealed before anything follows from it, every copy made of these parts
is sealed too: the thread head (`threads.head_record`), the successor messages in the queue
(`followups.messages_for`: a task's argument travels sealed), the notification outbox (the
interrupt payload), a dead letter. Readers open them here: `RecordStore` for records and thread
heads, the engine for a message's task (`open_task`), `carried_base` for resume values.

A JSON value is sealed as `seal_value` has it (`{"$sealed": "~base64"}`); the error message, a
string, as `"$sealed:~base64"`. Each part has its own associated data, so a sealed argument
cannot be passed off as an interrupt payload.

A part kept whole in a chunk (`{"$payload": ref}`, `sealing._part`) is not sealed again: its
chunk is a sealed payload of the thread already, and its ref (the sha256 of sealed bytes under a
random nonce, their size, a content type) says nothing of the plaintext. Left in the clear, the
ref is seen by the reference index (`references.py`), by `verify`'s payload check and by bundle
export, like any other payload a record names (`is_sealed_part`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_graph.checkpoint import (
    Checkpoint,
    ErrorInfo,
    InterruptInfo,
    PayloadRef,
    Task,
    ThreadRecord,
)
from durable_graph.encryption import (
    ThreadCipher,
    chunk_value,
    is_sealed,
    is_sealed_io,
    open_change,
    open_io,
    open_value,
    seal_value,
)
from durable_graph.erasure_record import describe_erased
from durable_graph.payloads import MARKER, is_ref

ARG_AAD = b"dg:arg"
INTERRUPT_AAD = b"dg:interrupt"
RESUME_AAD = b"dg:resume"
ERROR_AAD = b"dg:error"
TEXT_MARK = "$sealed:"  # a sealed string field (the error message) starts with this
SEALED_IN = "$sealed_in"  # an io response kept once, in the step's (sealed) change: a pointer

# What a reader puts in place of a part it cannot open (the key is destroyed): a JSON value for
# the value it replaces, None to leave the sealed form as it is.
Unreadable = Callable[[], Any] | None


def sealed_ref(value: Any) -> PayloadRef | None:
    """The ref of a part kept whole in a sealed chunk (`{"$payload": ref}`), else None."""
    if not is_ref(value):
        return None
    ref = PayloadRef.model_validate(value[MARKER])
    return ref if is_sealed(ref) else None


def is_sealed_part(value: Any) -> bool:
    """A part as an encrypted thread keeps it: sealed inline, or a ref to a sealed chunk."""
    return is_sealed_io(value) or sealed_ref(value) is not None


def seal_task(task: Task, cipher: ThreadCipher) -> Task:
    if task.arg is None or is_sealed_part(task.arg):
        return task
    return task.model_copy(update={"arg": seal_value(task.arg, cipher, ARG_AAD)})


def open_task(task: Task, cipher: ThreadCipher) -> Task:
    """The task with its argument opened (raises `SealBroken` when it does not open)."""
    if not is_sealed_io(task.arg):
        return task
    return task.model_copy(update={"arg": open_value(task.arg, cipher, ARG_AAD)})


def seal_interrupt(info: InterruptInfo | None, cipher: ThreadCipher) -> InterruptInfo | None:
    if info is None or info.payload is None or is_sealed_part(info.payload):
        return info
    return info.model_copy(update={"payload": seal_value(info.payload, cipher, INTERRUPT_AAD)})


def open_interrupt_payload(payload: Any, cipher: ThreadCipher) -> Any:
    """An interrupt payload as a notification carries it (sealed: from the sealed record)."""
    return open_value(payload, cipher, INTERRUPT_AAD)


def seal_resume(resume: dict[str, list[Any]], cipher: ThreadCipher) -> dict[str, list[Any]]:
    return {
        task_id: [v if is_sealed_part(v) else seal_value(v, cipher, RESUME_AAD) for v in values]
        for task_id, values in resume.items()
    }


def open_resume(values: list[Any], cipher: ThreadCipher) -> list[Any]:
    return [open_value(v, cipher, RESUME_AAD) for v in values]


def seal_error(error: ErrorInfo | None, cipher: ThreadCipher) -> ErrorInfo | None:
    if error is None or error.message.startswith(TEXT_MARK):
        return error
    sealed = TEXT_MARK + cipher.seal_text(error.message.encode("utf-8"), ERROR_AAD)
    return error.model_copy(update={"message": sealed})


def is_sealed_text(text: str) -> bool:
    return text.startswith(TEXT_MARK)


def is_pointer(value: Any) -> bool:
    """An io response stored as a pointer into its step's sealed changes (`sealing.py`)."""
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(value.get(SEALED_IN), list)
        and bool(value[SEALED_IN])
    )


def _pointed(record: Checkpoint, path: list[Any], cipher: ThreadCipher) -> Any:
    """The value an io pointer names: the change's value, or one item it appended (None where
    the change holds no sealed value any more: erased)."""
    change = record.changes.get(path[0]) if isinstance(path[0], str) else None
    if change is None or change.e is None:
        return None
    value = chunk_value(open_change(change, cipher))
    if len(path) == 1:
        return value
    index = path[1]
    if isinstance(value, list) and isinstance(index, int) and 0 <= index < len(value):
        return value[index]
    return None


def _open_response(record: Checkpoint, response: Any, cipher: ThreadCipher | None) -> Any:
    if cipher is None:
        return None if is_sealed_io(response) or is_pointer(response) else response
    if is_pointer(response):
        return _pointed(record, response[SEALED_IN], cipher)
    return open_io(response, cipher)


def has_sealed(record: Checkpoint | ThreadRecord) -> bool:
    """Whether anything of `record` is sealed here (a cheap test before opening)."""
    interrupt, error = record.interrupt, record.error
    if interrupt is not None and is_sealed_io(interrupt.payload):
        return True
    if error is not None and is_sealed_text(error.message):
        return True
    if isinstance(record, ThreadRecord):
        return False
    return (
        any(is_sealed_io(t.arg) for t in record.next)
        or any(is_sealed_io(v) for values in record.resume.values() for v in values)
        or any(is_sealed_io(r.response) or is_pointer(r.response) for r in record.io)
    )


def _opener(cipher: ThreadCipher | None, unreadable: Unreadable) -> Callable[[Any, bytes], Any]:
    def one(value: Any, aad: bytes) -> Any:
        if not is_sealed_io(value):
            return value
        if cipher is not None:
            return open_value(value, cipher, aad)
        return value if unreadable is None else unreadable()

    return one


def _open_interrupt(
    info: InterruptInfo | None, one: Callable[[Any, bytes], Any]
) -> InterruptInfo | None:
    if info is None or not is_sealed_io(info.payload):
        return info
    return info.model_copy(update={"payload": one(info.payload, INTERRUPT_AAD)})


def _open_error(
    error: ErrorInfo | None, cipher: ThreadCipher | None, unreadable: Unreadable
) -> ErrorInfo | None:
    if error is None or not is_sealed_text(error.message):
        return error
    if cipher is not None:
        text = cipher.open_text(error.message[len(TEXT_MARK) :], ERROR_AAD).decode("utf-8")
    elif unreadable is not None:
        marker = unreadable()
        text = f"(the message is {describe_erased(marker) or f'unreadable: {marker}'})"
    else:
        return error
    return error.model_copy(update={"message": text})


def open_record(
    record: Checkpoint, cipher: ThreadCipher | None, unreadable: Unreadable = None
) -> Checkpoint:
    """`record` with its sealed parts opened: task arguments, interrupt payload, resume
    values, error message and io responses. Without `cipher` (the key is gone) a sealed part
    becomes `unreadable()` (an io response: None) or, with `unreadable` None, stays sealed.
    Raises `SealBroken` for a part that does not open with the key (altered)."""
    if not has_sealed(record):
        return record
    one = _opener(cipher, unreadable)
    io = [
        r
        if not (is_sealed_io(r.response) or is_pointer(r.response))
        else r.model_copy(update={"response": _open_response(record, r.response, cipher)})
        for r in record.io
    ]
    return record.model_copy(
        update={
            "next": [t.model_copy(update={"arg": one(t.arg, ARG_AAD)}) for t in record.next],
            "resume": {k: [one(v, RESUME_AAD) for v in vs] for k, vs in record.resume.items()},
            "interrupt": _open_interrupt(record.interrupt, one),
            "error": _open_error(record.error, cipher, unreadable),
            "io": io,
        }
    )


def open_thread(
    record: ThreadRecord, cipher: ThreadCipher | None, unreadable: Unreadable = None
) -> ThreadRecord:
    """A thread head with its interrupt payload and error message opened (as `open_record`)."""
    if not has_sealed(record):
        return record
    return record.model_copy(
        update={
            "interrupt": _open_interrupt(record.interrupt, _opener(cipher, unreadable)),
            "error": _open_error(record.error, cipher, unreadable),
        }
    )


__all__ = [
    "SEALED_IN",
    "has_sealed",
    "is_pointer",
    "is_sealed_part",
    "is_sealed_text",
    "open_interrupt_payload",
    "open_record",
    "open_resume",
    "open_task",
    "open_thread",
    "seal_error",
    "seal_interrupt",
    "seal_resume",
    "seal_task",
    "sealed_ref",
]
