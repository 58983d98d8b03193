"""The transition queue port: the messages that name tasks (one SQS FIFO message each on
AWS), their leased deliveries, and the queue that sends, leases, acknowledges and releases them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from durable_graph.checkpoint import GraphRef, Task


class TransitionMessage(BaseModel):
    """Names one task: run `task` from checkpoint `step` of `thread_id`.

    `values`/`prev_hash` optionally carry checkpoint `step` itself so the hot path needs no read
    (safe: a committed checkpoint is immutable); they are omitted when the state is large.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    step: int
    task: Task
    graph: GraphRef
    parallel: int = 1
    carried: dict[str, Any] | None = None

    @property
    def dedup_id(self) -> str:
        return f"{self.thread_id}:{self.step}:{self.task.id}"

    @property
    def group_id(self) -> str:
        """FIFO group: per thread, or per task when several tasks of a step may run at once."""
        return self.thread_id if self.parallel == 1 else f"{self.thread_id}:{self.task.id}"


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message: TransitionMessage
    receipt: str
    receive_count: int = 1


class TransitionQueue(Protocol):
    def send(self, messages: Sequence[TransitionMessage]) -> None:
        """Enqueue; a message whose dedup id is already queued is dropped."""
        ...

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        """Lease up to `max_messages`; at most one in flight per FIFO group.

        `thread_id` restricts the lease to one thread's messages (the inline runner of
        `invoke`/`run`); queues that cannot filter (SQS) raise `NotImplementedError` for it.
        """
        ...

    def ack(self, delivery: Delivery) -> None: ...

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """`ack` each of `deliveries` (a group commit's batch), in one statement where the
        queue can: a lease that is no longer the message's is skipped, as by `ack`."""
        ...

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        """Make the message visible again after `delay` seconds (a transient failure)."""
        ...

    def depth(self) -> int:
        """Messages queued or in flight (approximate on SQS)."""
        ...
