"""Leased sends: the optional capability of a queue that leases a thread's next messages to
the worker inside the unit of work that commits the step they follow."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from durable_graph.ports.transition_queue import Delivery


@dataclass
class SendLease:
    """Sends of one thread's tasks, leased as they are queued to the worker that runs them
    next (`LeasingSends`): the inline runner of `invoke`/`run`/`resume`, or a worker going on
    with the thread whose step it commits. `settling` is the delivery the same unit of work
    acknowledges (its row is the group's only other one, and goes with the commit)."""

    thread_id: str
    max_messages: int
    visibility_timeout: float
    settling: Delivery | None = None
    fair: bool = False  # lease only while no other message waits (a worker serving all threads)
    leased: list[Delivery] = field(default_factory=list)
    unleased: int = 0  # messages of the thread queued as usual (group busy, over the max)


class LeasingSends(Protocol):
    """Optional capability of a queue: lease a thread's messages to the worker as they are
    sent, inside the unit of work that commits the step they follow, so running them needs no
    receive of its own (no second look at the queue, no separate lease write). A crash before
    they run leaves them leased, and they come back when the lease runs out, as any lease."""

    def leasing_sends(self, lease: SendLease) -> AbstractContextManager[SendLease]: ...
