"""Every error the engine raises, grouped by what the runtime must do next.

- `UserError` subclasses: the caller asked for something invalid. Nothing stored changes; the CLI
  prints the message and exits 2 (usage) or 1; the API maps them to 4xx once, at its boundary.
- `TransientError`: retry later (re-raise so SQS redelivers, or the local lease expires).
- `PermanentTaskError`: the task can never succeed as addressed; fail the thread with the reason.
- `ThreadFailed`: a run ended with the thread failed. The failure is already recorded as a
  checkpoint: report it (the CLI exits 1), never retry it or record it again; the thread stays
  failed until someone resumes it.
- `GraphInterrupt` is a `BaseException` so a node's `except Exception:` cannot swallow a suspension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class DurableGraphError(Exception):
    """Base of every error raised on purpose by durable-graph."""

    code: str = "error"


class UserError(DurableGraphError):
    """The request is invalid; stored state is unchanged."""

    code = "bad_request"


class InvalidInput(UserError):
    """Input failed validation; `field` names which part and why."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ThreadNotFound(UserError):
    code = "thread_not_found"

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} does not exist")
        self.thread_id = thread_id


class StepNotFound(UserError):
    code = "step_not_found"

    def __init__(self, thread_id: str, step: int) -> None:
        super().__init__(f"thread {thread_id!r} has no step {step}")
        self.thread_id = thread_id
        self.step = step


class UnknownNode(UserError):
    code = "unknown_node"

    def __init__(self, node: str, known: list[str]) -> None:
        super().__init__(f"unknown node {node!r}; the graph has: {', '.join(sorted(known))}")
        self.node = node


class ThreadExists(UserError):
    code = "thread_exists"

    def __init__(self, thread_id: str, status: str) -> None:
        super().__init__(
            f"thread {thread_id!r} already exists (status {status}); use `resume` to continue it"
        )
        self.thread_id = thread_id


class TurnRefused(UserError):
    """New input for a thread that cannot take it now: it is running, or it waits at an
    interrupt (the input would silently drop the pending decision; LangGraph reruns it)."""

    code = "turn_refused"

    def __init__(self, thread_id: str, status: str, why: str) -> None:
        super().__init__(f"thread {thread_id!r} is {status}: {why}")
        self.thread_id = thread_id
        self.status = status


class NotSuspended(UserError):
    """Only a suspended (or failed) thread accepts a human decision or a retry."""

    code = "not_suspended"

    def __init__(self, thread_id: str, status: str) -> None:
        super().__init__(f"thread {thread_id!r} is {status}, not suspended: nothing to resume")
        self.thread_id = thread_id
        self.status = status


class _AtStep(Protocol):
    """A thread's head as far as a stale-head refusal needs it (a `Checkpoint`)."""

    @property
    def thread_id(self) -> str: ...

    @property
    def step(self) -> int: ...


class StaleHead(UserError):
    """Optimistic concurrency: the caller's view of the thread is out of date."""

    code = "stale_head"

    def __init__(self, thread_id: str, expected_step: int, actual_step: int) -> None:
        super().__init__(
            f"thread {thread_id!r} moved on: you saw step {expected_step}, "
            f"the head is now step {actual_step}; re-read the state and decide again"
        )
        self.thread_id = thread_id
        self.expected_step = expected_step
        self.actual_step = actual_step

    @classmethod
    def beaten(cls, head: _AtStep) -> Callable[[_AtStep | None], StaleHead]:
        """`Engine.commit`'s refusal for a step written over `head` that another writer
        beat: the error naming the step the thread is at now (the winner's)."""
        return lambda winner: cls(
            head.thread_id, head.step, winner.step if winner is not None else head.step
        )


class GraphMismatch(UserError):
    """The thread was started under another graph version."""

    code = "graph_mismatch"


class SerializationError(InvalidInput):
    code = "not_serializable"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class StepConflict(DurableGraphError):
    """A conditional write lost: someone else committed that step first. Carries the winner."""

    code = "step_conflict"

    def __init__(self, thread_id: str, step: int, existing: Any = None) -> None:
        super().__init__(f"step {step} of thread {thread_id!r} is already committed")
        self.thread_id = thread_id
        self.step = step
        self.existing = existing


class RecordConflict(DurableGraphError):
    """A versioned record changed under us. Carries the current record (or None)."""

    code = "record_conflict"

    def __init__(self, key: str, current: Any = None) -> None:
        super().__init__(f"record {key!r} was changed concurrently")
        self.key = key
        self.current = current


class TransientError(DurableGraphError):
    """Retry later; nothing is wrong with the request itself."""

    code = "transient"


class EffectInProgress(TransientError):
    """Another worker holds the lease on a side effect; retry after it expires."""

    code = "effect_in_progress"


class StorageFull(TransientError):
    """The disk refused a write (full, over quota, over a file-size limit, or an I/O error):
    nothing was committed, and the same write succeeds once space is freed, so the task is
    retried with backoff and the thread stays running; it is never failed for it."""

    code = "storage_full"


class StoreBusy(TransientError):
    """The store stayed locked by another writer past the wait allowed (SQLite's busy
    timeout): retry later, like a throttled request."""

    code = "store_busy"


class SchemaMismatch(UserError):
    """A PostgreSQL store whose schema version is not the one this durable-graph writes: older
    (run `durable-graph db upgrade`) or newer (upgrade durable-graph). Nothing was written."""

    code = "schema_mismatch"

    def __init__(self, found: int, expected: int) -> None:
        action = (
            "run `durable-graph db upgrade --store URI` (or open it with migrate=True)"
            if found < expected
            else "upgrade durable-graph: the store was migrated by a newer release"
        )
        super().__init__(
            f"the store's schema is version {found}, this release needs {expected}: {action}"
        )
        self.found = found
        self.expected = expected


class StoreUnreachable(TransientError):
    """The store's server is down, restarting or refusing connections (PostgreSQL): nothing
    was committed by the failed call, and the same call succeeds once the server is back."""

    code = "store_unreachable"


class PermanentTaskError(DurableGraphError):
    """The task can never succeed as addressed (unknown node, bad message, graph mismatch)."""

    code = "permanent"


class RecordedError(Protocol):
    """A failed checkpoint's `error` (`checkpoint.ErrorInfo`), named here so this module, which
    every other imports, imports none of them."""

    @property
    def node(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def attempts(self) -> int: ...

    @property
    def retryable(self) -> bool: ...


class ThreadFailed(DurableGraphError):
    """`invoke`/`resume` ran the thread and it ended failed; `error` is what its head recorded.

    Nothing is lost: the failed checkpoint is committed, and `resume(thread_id)` retries the
    failed tasks once the cause is fixed.
    """

    code = "thread_failed"

    def __init__(self, thread_id: str, step: int, error: RecordedError | None) -> None:
        if error is None:
            cause = " (no error was recorded)"
        else:
            tries = "attempt" if error.attempts == 1 else "attempts"
            cause = (
                f" in node {error.node!r}: {error.type}: {error.message} ({error.attempts} {tries})"
            )
        super().__init__(
            f"thread {thread_id!r} failed at step {step}{cause}; "
            "the thread stays failed and can be resumed"
        )
        self.thread_id = thread_id
        self.step = step
        self.error = error


class GraphRecursionError(DurableGraphError, RecursionError):
    """A run took `recursion_limit` supersteps and was still running (LangGraph's
    `GraphRecursionError`, default limit 25). The thread is failed with this reason; raise
    the limit (`config={"recursion_limit": n}`) and `invoke(None, config)` continues it."""

    code = "recursion_limit"

    def __init__(self, thread_id: str, limit: int, step: int) -> None:
        super().__init__(
            f"Recursion limit of {limit} reached without hitting a stop condition: thread "
            f"{thread_id!r} ran {limit} steps in this run and is still running (step {step}). "
            "A loop in the graph that never reaches END? Raise the limit with "
            'config={"recursion_limit": ...}; invoke(None, config) continues the thread.'
        )
        self.thread_id = thread_id
        self.limit = limit
        self.step = step


class PayloadCorrupted(DurableGraphError):
    """Stored payload bytes no longer match their digest."""

    code = "payload_corrupted"


class DataKeyUnavailable(UserError):
    """A thread's values are encrypted (`encryption.py`) and this process cannot open them: its
    data key was destroyed (the thread was erased), or the store was opened without the
    key-encryption key that wraps it. Nothing was read or written."""

    code = "data_key_unavailable"

    def __init__(self, thread_id: str, why: str) -> None:
        super().__init__(f"the values of thread {thread_id!r} are encrypted and {why}")
        self.thread_id = thread_id


class GraphInterrupt(BaseException):
    """Raised by `interrupt(payload)` to suspend the thread; a signal, not a failure."""

    def __init__(self, payload: Any) -> None:
        super().__init__("graph interrupted")
        self.payload = payload


class CorruptRecord(DurableGraphError):
    """A stored record can no longer be parsed: it was altered outside durable-graph."""

    code = "corrupt_record"

    def __init__(self, thread_id: str, step: int, reason: str) -> None:
        super().__init__(f"step {step} of thread {thread_id!r} is unreadable: {reason}")
        self.thread_id = thread_id
        self.step = step


class UnsupportedFormat(CorruptRecord):
    """A stored record or snapshot in a format this release does not read: it was written by
    a newer release of durable-graph. Refused, never read as a missing value (an older
    release once read a newer snapshot's dict that way); upgrade durable-graph to read it."""

    code = "unsupported_format"


class StoreUnreadable(UserError):
    """The embedded store's file is not a SQLite database, or SQLite reports it corrupt.

    A user error: nothing durable-graph can retry fixes the file, and nothing was written to it;
    the message says how to inspect it.
    """

    code = "store_unreadable"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"{path} is not a durable-graph store or is corrupt ({detail}): run "
            f"`sqlite3 {path} 'PRAGMA integrity_check'` to inspect it, and restore it from a "
            "backup or set DURABLE_GRAPH_HOME to another folder"
        )
        self.path = path


class StoreUnavailable(UserError):
    """The store cannot be opened where it is configured (embedded: a directory, no
    permission, a read-only folder; PostgreSQL: no such host, database or role, a wrong
    password): a wrong location, which no retry fixes."""

    code = "store_unavailable"

    def __init__(
        self,
        path: str,
        detail: str,
        *,
        hint: str = "set DURABLE_GRAPH_HOME to a folder you can write",
    ) -> None:
        super().__init__(f"cannot open the store {path} ({detail}): {hint}")
        self.path = path
