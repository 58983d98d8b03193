"""TransitionQueue contract (SQS FIFO semantics), on every backend."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from tests.helpers import message


def drain(backend: Backend) -> list[str]:
    seen: list[str] = []
    while True:
        batch = backend.queue.receive(max_messages=10, visibility_timeout=30)
        if not batch:
            return seen
        for delivery in batch:
            seen.append(delivery.message.dedup_id)
            backend.queue.ack(delivery)


def test_send_receive_ack(backend: Backend) -> None:
    backend.queue.send([message("q1", 0)])
    [delivery] = backend.queue.receive(max_messages=10, visibility_timeout=30)
    assert delivery.message == message("q1", 0)
    assert delivery.receive_count == 1
    backend.queue.ack(delivery)
    assert backend.queue.receive(max_messages=10, visibility_timeout=30) == []


def test_duplicate_send_is_dropped(backend: Backend) -> None:
    """Given the same transition sent twice, then it is delivered once."""
    backend.queue.send([message("q2", 0)])
    backend.queue.send([message("q2", 0)])
    assert drain(backend) == ["q2:0:0:a"]


def test_one_in_flight_per_group_in_order(backend: Backend) -> None:
    """Given two messages of one thread, then the second is not delivered while the first is
    in flight (FIFO group), and order is kept."""
    backend.queue.send([message("q3", 0), message("q3", 1)])
    first = backend.queue.receive(max_messages=10, visibility_timeout=30)
    assert [d.message.step for d in first] == [0]
    assert backend.queue.receive(max_messages=10, visibility_timeout=30) == []
    backend.queue.ack(first[0])
    second = backend.queue.receive(max_messages=10, visibility_timeout=30)
    assert [d.message.step for d in second] == [1]


def test_parallel_tasks_are_separate_groups(backend: Backend) -> None:
    """Given two tasks of one step (parallel), then both can be in flight at once."""
    backend.queue.send([message("q4", 3, "a", parallel=2), message("q4", 3, "b", parallel=2)])
    got = backend.queue.receive(max_messages=10, visibility_timeout=30)
    assert sorted(d.message.task.node for d in got) == ["a", "b"]


def test_lease_expiry_redelivers(backend: Backend, clock: ManualClock) -> None:
    """Given a received message never acknowledged (a killed worker), when the visibility
    timeout passes, then it is delivered again with a higher receive count."""
    backend.queue.send([message("q5", 0)])
    [first] = backend.queue.receive(max_messages=1, visibility_timeout=5)
    clock.advance(6)
    redelivered = backend.queue.receive(max_messages=1, visibility_timeout=5)
    assert [d.message for d in redelivered] == [first.message]
    assert redelivered[0].receive_count == 2


def test_release_makes_visible_again(backend: Backend) -> None:
    backend.queue.send([message("q6", 0)])
    [delivery] = backend.queue.receive(max_messages=1, visibility_timeout=30)
    backend.queue.release(delivery)
    again = backend.queue.receive(max_messages=1, visibility_timeout=30)
    assert [d.message for d in again] == [delivery.message]


def test_ack_many_acknowledges_those_given(backend: Backend) -> None:
    """Given three messages leased at once, when two are acknowledged together (one of them
    acknowledged already), then only the third is left; acknowledging none changes nothing."""
    backend.queue.send([message("q7", 0), message("q8", 0), message("q9", 0)])
    leased = {
        d.message.thread_id: d
        for d in backend.queue.receive(max_messages=10, visibility_timeout=30)
    }
    assert sorted(leased) == ["q7", "q8", "q9"]
    backend.queue.ack(leased["q7"])
    backend.queue.ack_many([leased["q7"], leased["q8"]])
    backend.queue.ack_many([])
    backend.queue.release(leased["q9"])
    assert drain(backend) == ["q9:0:0:a"]
