"""What a step's commit writes besides its checkpoint (`CommitWrites`), and the optional
capability of a checkpoint store that writes both in one request (`CombinedCommit`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from durable_graph.checkpoint import Checkpoint, ThreadRecord


@dataclass(frozen=True)
class RecordWrite:
    """A small record written with a step's commit (`CommitWrites`): created iff absent
    (`expected_version=None`) or replaced iff its version is `expected_version`."""

    key: str
    value: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class CommitWrites:
    """What a step's commit writes besides its checkpoint: the thread head when the status
    changes, and small records that follow from the step (the head signature, effect results).
    They are follow-ups, never conditions of the commit: each keeps its own condition, and one
    that loses (a head already further on, a signature already there, a claim taken over)
    never stops the checkpoint from committing."""

    head: ThreadRecord | None = None
    records: tuple[RecordWrite, ...] = ()

    def __bool__(self) -> bool:
        return self.head is not None or bool(self.records)


@runtime_checkable
class CombinedCommit(Protocol):
    """Optional capability of a checkpoint store that can write a step and its `CommitWrites`
    in one request (DynamoDB: one `TransactWriteItems`), so a status change costs one write
    instead of one per item. Stores without it get them written right after the append, in
    the backend's unit of work (`RecordStore.append_checkpoint`)."""

    def append_with(self, checkpoint: Checkpoint, writes: CommitWrites) -> bool:
        """Write `checkpoint` iff absent (else raise `StepConflict` with the winner, having
        written nothing) and, with it or right after it, `writes`. Returns whether `writes`
        were written; False asks the caller to write each on its own (one of them lost its
        condition, or there was only one)."""
        ...
