"""Drawing the salts of a step's parts when it is sealed (`salted_parts.py` says how a record
hashes them): a task's argument, the interrupt payload, the error message, each io response
and each resume value get a fresh salt, once; a part that has one keeps it (a task carried to a
later step keeps its argument's salt, so its digest is the same there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_graph.checkpoint import ErrorInfo, InterruptInfo, IoRecord, Task
from durable_graph.salted_parts import new_salt, part_digest


def salt_task(task: Task) -> Task:
    if task.arg is None or task.s is not None:
        return task
    return task.copied(s=new_salt())


def salt_interrupt(info: InterruptInfo | None) -> InterruptInfo | None:
    if info is None or info.payload is None or info.s is not None:
        return info
    return info.copied(s=new_salt())


def salt_error(error: ErrorInfo | None) -> ErrorInfo | None:
    if error is None or error.s is not None:
        return error
    return error.copied(s=new_salt())


def salt_io(record: IoRecord, salt: str | None = None) -> IoRecord:
    """The io record with a salt (its own, else `salt`, else a fresh one), and its
    `response_sha256` the salted digest (a digest of the response alone would let anyone
    confirm a guessed answer)."""
    salt = record.s or salt or new_salt()
    return record.copied(s=salt, response_sha256=part_digest(salt, record.response))


def resume_salts(resume: Mapping[str, list[Any]]) -> dict[str, list[str]]:
    """A salt for each resume value, per task."""
    return {task_id: [new_salt() for _ in values] for task_id, values in resume.items() if values}


__all__ = ["resume_salts", "salt_error", "salt_interrupt", "salt_io", "salt_task"]
