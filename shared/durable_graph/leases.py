"""How a worker takes the tasks it runs: received from the queue (`claim`), or leased to it by
the very commit that queued them (`inline`: no queue round trip).

A process that commits a step and goes on with the thread itself (the inline runner of
`invoke` / `run` / `resume`, a worker going on with the thread whose step it committed) needs no
receive for the next task: where the queue can (`LeasingSends`, the embedded queue), that commit
writes the task's row already leased to it (receipt, lease expiry, first receive), and the
process runs the task from the message in memory. Nothing about crashes changes: a process
killed before the task's own commit leaves a leased row, which another worker takes when the
lease runs out, as after any receive (`tests/e2e/test_inline_crash.py`). A task the queue cannot
lease so (its FIFO group holds another message) is received as before, in the same unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, cast

from durable_graph.ports.send_leases import LeasingSends, SendLease
from durable_graph.ports.transition_queue import Delivery, TransitionQueue
from durable_graph.ports.worked_queues import is_worked_here


def needs_claim(lease: SendLease | None) -> bool:
    """Whether a unit of work that sent its thread's next tasks must still receive them: the
    queue cannot lease as it sends, or it leased none and left one unleased."""
    return lease is None or (not lease.leased and lease.unleased > 0)


class Leases:
    """The leases one worker takes: up to `concurrency` tasks at a time, each for
    `visibility_timeout` seconds."""

    def __init__(
        self, queue: TransitionQueue, *, concurrency: int, visibility_timeout: float
    ) -> None:
        self.queue = queue
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout

    def serve(self) -> None:
        """This worker leases every thread's tasks: a queue worked here (`WorkedHere`) is
        told so, and this process's sends stop carrying state the worker would not use."""
        if is_worked_here(self.queue):
            self.queue.worked_here = True

    def claim(self, thread_id: str | None) -> list[Delivery]:
        """Lease the next tasks (of one thread, where the queue can filter)."""
        try:
            return self.queue.receive(
                max_messages=self.concurrency,
                visibility_timeout=self.visibility_timeout,
                thread_id=thread_id,
            )
        except NotImplementedError:  # SQS cannot filter by thread: take whatever is next
            return self.queue.receive(
                max_messages=self.concurrency, visibility_timeout=self.visibility_timeout
            )

    @contextmanager
    def inline(
        self, thread_id: str, *, runs: Callable[[], bool] = lambda: True
    ) -> Iterator[list[Delivery]]:
        """A unit of work that commits a step of `thread_id` (a start, a next turn, a resume)
        for this worker to run the thread on from there: the list it yields holds, once the
        block ends (inside the caller's unit of work), the deliveries to run first.

        Each task the block queues is leased to this worker as it is written, where the queue
        can. Otherwise, as before, the thread's queued tasks are received at the end of the
        block if `runs()` says the caller runs the thread on (asked then: e.g. only when the
        step it committed is running), or if a task was left unleased (its group is busy)."""
        taken: list[Delivery] = []
        lease = self.send_lease(thread_id)
        with self.leasing(lease):
            yield taken
        if lease is not None:
            taken.extend(lease.leased)
            if lease.leased or not (lease.unleased or runs()):
                return
        elif not runs():
            return
        taken.extend(self.claim(thread_id))

    def send_lease(
        self, thread_id: str, settling: Delivery | None = None, *, fair: bool = False
    ) -> SendLease | None:
        """The lease a commit's sends of `thread_id` take (None: the queue cannot).
        `settling`: the delivery the same unit of work acknowledges; `fair`: lease only while
        no other thread's message waits (a worker serving every thread)."""
        if not callable(getattr(self.queue, "leasing_sends", None)):
            return None
        return SendLease(
            thread_id, self.concurrency, self.visibility_timeout, settling=settling, fair=fair
        )

    def leasing(self, lease: SendLease | None) -> AbstractContextManager[Any]:
        """The block in which the queue takes `lease` as it sends (nothing when None)."""
        if lease is None:
            return nullcontext()
        return cast(LeasingSends, self.queue).leasing_sends(lease)


__all__ = ["Leases", "needs_claim"]
