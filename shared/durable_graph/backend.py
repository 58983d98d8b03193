"""A backend is one implementation of each port, bundled with its size limits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backends.records import RecordStore
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import InvalidInput, PayloadTooLarge
from durable_graph.mail import Mailer
from durable_graph.payloads import DEFAULT_OFFLOAD_BYTES
from durable_graph.ports.commit_writes import RecordWrite
from durable_graph.ports.leftovers import Leftovers
from durable_graph.ports.notifier import Notifier
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.ports.transition_queue import TransitionQueue
from durable_graph.signing import Signer

DEFAULT_MAX_VALUE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LinkGrant:
    """What `Backend.approval_links` gives a suspension: the links its notification carries,
    and the records that make them valid, written with the suspension's commit."""

    links: dict[str, str] = field(default_factory=dict)
    records: tuple[RecordWrite, ...] = ()


@dataclass
class Backend:
    checkpoints: RecordStore  # the record format over one of the CheckpointStore backends
    payloads: PayloadStore
    queue: TransitionQueue
    notifier: Notifier
    offload_threshold: int = DEFAULT_OFFLOAD_BYTES
    max_record_bytes: int = 350 * 1024
    # The largest single state value a step may write (one field's change, one chunk). The
    # state as a whole has no limit: each change is its own chunk (docs/record-format.md).
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    # A unit of work around "commit the step, queue its successors, ack the message". Where the
    # store and the queue share one database (embedded) this makes the three one transaction;
    # elsewhere it is a no-op and the order alone keeps every crash point safe (DESIGN.md §3).
    atomic: Callable[[], AbstractContextManager[Any]] = nullcontext
    # A unit of work for writes a crash may lose without losing a committed fact: effect
    # claims and results, queue leases. Embedded it commits without an fsync of its own (the
    # next step's durable commit syncs it, WAL order); PostgreSQL: synchronous_commit off for
    # the transaction. A step's commit never goes through it. Default: an ordinary write.
    relaxed: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Whether `atomic` is one transaction that may hold the steps of many threads, so a worker
    # leasing several messages commits their steps together, one fsync for all (a group
    # commit, `Worker.handle_group`). Embedded and PostgreSQL: yes; DynamoDB: no (a
    # transaction cannot span threads' steps), each step commits on its own.
    group_commit: bool = False
    # Links a suspension notification carries (e.g. a signed approval link), minted by whoever
    # hosts the API; None leaves notifications without links. Called before the commit, which
    # writes the grant's records; it must not write anything itself.
    approval_links: Callable[[Checkpoint], LinkGrant] | None = None
    # Signs chain heads when a thread suspends, completes or fails (signing.py); None: unsigned.
    signer: Signer | None = None
    # Sends the emails nodes ask for (`ctx.mailer`, durable_graph/mail.py): the store's outbox
    # folder embedded, SES on AWS; None: a node that sends mail fails with `MailerMissing`.
    mailer: Mailer | None = None
    # Whether this process may delete payload objects, so the chunks of a step whose
    # conditional append lost are deleted (`orphans.py`). False for an AWS function whose role
    # may not (the worker: deleting payloads is erasure's alone): it leaves them in
    # `leftovers` for the sweeper, which may (`leftovers.py`).
    deletes_payloads: bool = True
    leftovers: Leftovers | None = None
    # Why this store takes no writes (e.g. an `aws://TABLE?bucket=` URI that names no queue), or
    # None. Commands that write check it first, so a refusal stores nothing.
    read_only: str | None = None

    def check_writable(self) -> None:
        if self.read_only is not None:
            raise InvalidInput(self.read_only, field="store")

    def check_record_size(self, checkpoint: Checkpoint) -> None:
        """Refuse, before anything is written, a record the store could not hold."""
        size = len(checkpoint.to_stored_json())  # exactly what the store keeps
        if size > self.max_record_bytes:
            raise PayloadTooLarge(
                f"checkpoint {checkpoint.step} of {checkpoint.thread_id!r} is {size} bytes after "
                f"offloading (limit {self.max_record_bytes}): the step's changes, task list and "
                "io are each moved to the payload store when large, so this is a bug; please "
                "report it",
                field="values",
            )

    def close(self) -> None:
        for part in (self.checkpoints, self.payloads, self.queue, self.notifier, self.mailer):
            closer = getattr(part, "close", None)
            if callable(closer):
                closer()
