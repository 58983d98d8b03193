"""Running a task inline, without a queue round trip (worker.py `inline`, the embedded queue's
`leasing_sends`): the commit that queues a thread's next task writes its row already leased to
the worker that runs it, and the worker runs it from memory.

Real SQLite files throughout; the SIGKILL at this crash point is `tests/e2e/test_inline_crash.py`.
"""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from durable_graph.clock import ManualClock
from durable_graph.engine import Outcome
from durable_graph.ports.send_leases import SendLease
from examples.email_approval import graph as email_graph
from tests.helpers import message

LEASE = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def backend(tmp_path: Path, clock: ManualClock) -> Backend:
    return local_backend(tmp_path / "home", clock=clock)


def _queue(backend: Backend) -> SqliteQueue:
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    return queue


def _rows(backend: Backend) -> list[tuple[str, bool, int, str]]:
    with sqlite3.connect(_queue(backend).db.path) as conn:
        return [
            (str(r[0]), bool(r[1]), int(r[2]), str(r[3]))
            for r in conn.execute(
                "SELECT dedup_id, receipt IS NOT NULL, receive_count, body FROM queue ORDER BY id"
            )
        ]


def test_a_leased_send_is_written_leased_and_comes_back_after_its_lease(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a message sent inside `leasing_sends`, then its row is written leased (receipt,
    first receive) and handed to the caller, no receive sees it while the lease lasts, and once
    the lease runs out (the caller died) it is delivered again as the second receive."""
    queue = _queue(backend)
    lease = SendLease("l1", max_messages=4, visibility_timeout=LEASE)
    sent = message("l1", 0).model_copy(update={"carried": {"values": {"x": 1}}})
    with queue.leasing_sends(lease), backend.atomic():
        queue.send([sent])
    [delivery] = lease.leased
    assert delivery.message == sent and delivery.receive_count == 1 and lease.unleased == 0
    [(dedup, leased, count, body)] = _rows(backend)
    assert (dedup, leased, count) == ("l1:0:0:a", True, 1)
    assert '"carried"' not in body  # only the first delivery, in memory, would use it
    assert queue.receive(max_messages=10, visibility_timeout=LEASE) == []
    clock.advance(LEASE + 1)
    [again] = queue.receive(max_messages=10, visibility_timeout=LEASE)
    assert again.message == sent.model_copy(update={"carried": None})
    assert again.receive_count == 2
    queue.ack(delivery)  # the first lease's late ack settles nothing: the receipt changed
    assert len(_rows(backend)) == 1
    queue.ack(again)
    assert _rows(backend) == []


def test_a_busy_group_keeps_fifo_order_and_the_send_is_queued_as_usual(backend: Backend) -> None:
    """Given a thread's group holding an older message, when its next message is sent inside
    `leasing_sends`, then it is queued unleased (counted), and a receive delivers the older
    one first."""
    queue = _queue(backend)
    queue.send([message("l2", 0)])
    lease = SendLease("l2", max_messages=4, visibility_timeout=LEASE)
    with queue.leasing_sends(lease):
        queue.send([message("l2", 1)])
    assert lease.leased == [] and lease.unleased == 1
    [first] = queue.receive(max_messages=10, visibility_timeout=LEASE)
    assert first.message.step == 0


def test_the_settled_delivery_does_not_make_its_group_busy(backend: Backend) -> None:
    """Given a delivery being acknowledged by the unit of work that queues its thread's next
    message, then that message is leased (the group's other row goes with the unit); a row
    of the group under someone else's lease (ours ran out) makes it busy."""
    queue = _queue(backend)
    queue.send([message("l3", 0)])
    [mine] = queue.receive(max_messages=1, visibility_timeout=LEASE)
    lease = SendLease("l3", max_messages=4, visibility_timeout=LEASE, settling=mine)
    with queue.leasing_sends(lease), backend.atomic():
        queue.send([message("l3", 1)])
        queue.ack(mine)
    assert [d.message.step for d in lease.leased] == [1]
    stale = mine.model_copy(update={"receipt": "1:not-ours"})
    lease = SendLease("l3", max_messages=4, visibility_timeout=LEASE, settling=stale)
    with queue.leasing_sends(lease):
        queue.send([message("l3", 2)])
    assert lease.leased == [] and lease.unleased == 1


def test_only_the_leased_thread_and_up_to_the_maximum_are_leased(backend: Backend) -> None:
    """Given a lease for one thread taking at most 2, when 3 parallel tasks of it and a task of
    another thread are sent, then 2 are leased and the others wait in the queue."""
    queue = _queue(backend)
    lease = SendLease("l4", max_messages=2, visibility_timeout=LEASE)
    tasks = [message("l4", 5, node, parallel=3) for node in "abc"]
    with queue.leasing_sends(lease):
        queue.send([*tasks, message("other", 0)])
    assert [d.message.task.node for d in lease.leased] == ["a", "b"]
    assert lease.unleased == 1
    waiting = queue.receive(max_messages=10, visibility_timeout=LEASE)
    assert sorted(d.message.dedup_id for d in waiting) == ["l4:5:5:c", "other:0:0:a"]


def test_a_leased_send_rolls_back_with_its_unit_of_work(backend: Backend) -> None:
    queue = _queue(backend)
    lease = SendLease("l5", max_messages=4, visibility_timeout=LEASE)
    with pytest.raises(RuntimeError), queue.leasing_sends(lease), backend.atomic():
        queue.send([message("l5", 0)])
        raise RuntimeError("the commit failed")
    assert _rows(backend) == []


def test_the_inline_runner_never_receives_from_the_queue(tmp_path: Path) -> None:
    """Given the seed approval flow on the embedded store, when `invoke` and `resume` run it
    start to finish, then neither ever receives a message (no visible-message scan, no lease
    update): each task it runs was leased by the commit that queued it; and the queue is
    empty at the end."""
    backend = local_backend(tmp_path / "home")
    db = _queue(backend).db
    assert isinstance(db, Database)
    statements: list[str] = []
    db.trace(statements.append)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    db.trace(None)
    assert app.get_state("t-1").values["outcome"] == "sent"
    receives = [s for s in statements if "FROM queue q WHERE visible_at" in s]
    lease_updates = [s for s in statements if s.startswith("UPDATE queue SET receipt")]
    assert receives == [] and lease_updates == []
    assert sum(s.startswith("INSERT OR IGNORE INTO queue") for s in statements) == 2
    assert _rows(backend) == []
    backend.close()


def test_update_state_queues_the_next_task_for_anyone(backend: Backend) -> None:
    """Given a suspended thread, when `update_state` (which runs nothing) writes the decision,
    then the next task is queued unleased, for whoever runs the thread (a lease to this caller
    would stall it until the lease ran out), and `invoke(None)` runs it to the end."""
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="u-1")
    app.update_state("u-1", {"approved": True}, as_node="human_review")
    assert [(r[0], r[1], r[2]) for r in _rows(backend)] == [("u-1:2:2:send_email", False, 0)]
    app.invoke(None, {"configurable": {"thread_id": "u-1"}})
    assert app.get_state("u-1").values["outcome"] == "sent"
    assert _rows(backend) == []


class ChainState(BaseModel):
    trail: Annotated[list[str], operator.add] = Field(default_factory=list)


def _step(name: str) -> Any:
    def node(state: ChainState) -> dict[str, Any]:
        return {"trail": [name]}

    return node


def _chain() -> Any:
    builder = StateGraph(ChainState)
    for name in ("a", "b", "c"):
        builder.add_node(name, _step(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(name="tests.unit.test_inline_leases:chain")


def test_a_worker_alone_with_a_thread_runs_it_on_without_receiving(backend: Backend) -> None:
    """Given one thread of three steps queued (started detached), when a worker serving every
    thread drains the queue, then it receives once (the first task) and runs the next two as
    their commits leased them to it."""
    app = _chain().with_backend(backend)
    app.start({}, thread_id="c-1")
    db = _queue(backend).db
    statements: list[str] = []
    db.trace(statements.append)
    app.worker(concurrency=1).run(until_idle=True)
    db.trace(None)
    assert app.get_state("c-1").values["trail"] == ["a", "b", "c"]
    assert sum("FROM queue q WHERE visible_at" in s for s in statements) == 1
    assert _rows(backend) == []


def test_a_worker_serving_every_thread_keeps_fifo_order_across_threads(backend: Backend) -> None:
    """Given two threads queued, when a worker serving every thread runs them one task at a
    time, then their steps alternate (a thread's next task is not leased to the worker while
    the other thread's waits)."""
    app = _chain().with_backend(backend)
    app.start({}, thread_id="f-1")
    app.start({}, thread_id="f-2")
    order: list[tuple[str, int]] = []

    def seen(outcome: Outcome) -> None:
        if outcome.checkpoint is not None:
            order.append((outcome.checkpoint.thread_id, outcome.checkpoint.step))

    app.worker(concurrency=1, on_outcome=seen).run(until_idle=True)
    assert order == [("f-1", 1), ("f-2", 1), ("f-1", 2), ("f-2", 2), ("f-1", 3), ("f-2", 3)]
