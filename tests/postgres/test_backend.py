"""What the Postgres backend adds to the conformance suite: one transaction per unit of work,
LISTEN/NOTIFY wake-ups, leases raced by many connections, poison rows, the outbox."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from durable_graph.backend import Backend
from durable_graph.backends.postgres import postgres_backend
from durable_graph.backends.postgres.queue import PostgresQueue
from durable_graph.errors import StepConflict
from durable_graph.ports.notifier import Notification
from durable_graph.ports.transition_queue import Delivery
from tests.graphs import slow_graph
from tests.helpers import checkpoint, message


def test_a_unit_of_work_commits_all_or_nothing(pg_backend: Backend) -> None:
    """Given a commit, a send and an ack in one `atomic()`, when it raises before its end,
    then none of the three is stored; when it ends, all three are."""
    pg_backend.queue.send([message("u1", 0)])
    [delivery] = pg_backend.queue.receive(max_messages=1)

    with pytest.raises(RuntimeError), pg_backend.atomic():
        pg_backend.checkpoints.append_checkpoint(checkpoint("u1", 0))
        pg_backend.queue.send([message("u1", 1)])
        pg_backend.queue.ack(delivery)
        raise RuntimeError("crash before the commit")

    assert pg_backend.checkpoints.head_checkpoint("u1") is None
    assert pg_backend.queue.depth() == 1  # the leased message is still there, nothing new

    with pg_backend.atomic():
        pg_backend.checkpoints.append_checkpoint(checkpoint("u1", 0))
        pg_backend.queue.send([message("u1", 1)])
        pg_backend.queue.ack(delivery)
    assert pg_backend.checkpoints.head_checkpoint("u1") is not None
    [after] = pg_backend.queue.receive(max_messages=5)
    assert after.message.step == 1


def test_a_rolled_back_unit_leaves_no_phantom_state_in_the_cache(pg_backend: Backend) -> None:
    """Given a unit of work that committed a step in memory and then failed (a connection lost
    before COMMIT), then the process does not hand that step out from memory (`peek`): a step
    committed by another worker must not be built upon one that never was."""
    app = slow_graph.with_backend(pg_backend)
    app.start({}, thread_id="u3")
    assert pg_backend.checkpoints.peek("u3", 0) is not None  # remembered after a commit

    with pytest.raises(RuntimeError), pg_backend.atomic():
        app.start({}, thread_id="u4")
        assert pg_backend.checkpoints.peek("u4", 0) is not None
        raise RuntimeError("connection lost before COMMIT")

    assert pg_backend.checkpoints.peek("u4", 0) is None
    assert pg_backend.checkpoints.head_checkpoint("u4") is None


def test_a_lost_condition_inside_a_unit_of_work_leaves_it_usable(pg_backend: Backend) -> None:
    """Given step 0 committed, when a unit of work appends step 0 again (a redelivery), then
    StepConflict carries the winner and the same transaction still commits what follows."""
    pg_backend.checkpoints.append_checkpoint(checkpoint("u2", 0))
    with pg_backend.atomic():
        with pytest.raises(StepConflict) as caught:
            pg_backend.checkpoints.append_checkpoint(checkpoint("u2", 0, values={"n": 9}))
        assert caught.value.existing.values == {"n": 0}
        pg_backend.queue.send([message("u2", 1)])
    assert pg_backend.queue.depth() == 1


def test_an_idle_listener_wakes_at_once_on_a_send_from_another_process(pg_uri: str) -> None:
    """Given a queue waiting (LISTEN) with a 10-second bound, when another connection sends a
    message, then the wait returns True well within a second."""
    waiter = postgres_backend(pg_uri)
    sender = postgres_backend(pg_uri)
    try:
        queue = waiter.queue
        assert isinstance(queue, PostgresQueue)
        assert queue.wait(0.05) is False  # starts listening; nothing sent
        woke: list[tuple[bool, float]] = []

        def wait() -> None:
            started = time.monotonic()
            woke.append((queue.wait(10.0), time.monotonic() - started))

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.2)
        sender.queue.send([message("w1", 0)])
        thread.join(timeout=15)
        [(notified, waited)] = woke
        assert notified is True and waited < 1.5
    finally:
        waiter.close()
        sender.close()


def test_racing_receivers_never_lease_one_message_twice(pg_uri: str) -> None:
    """Given 200 messages in 200 groups, when 8 connections receive at once until the queue is
    empty, then every message is leased exactly once."""
    backends = [postgres_backend(pg_uri, max_connections=2) for _ in range(8)]
    try:
        backends[0].queue.send([message(f"r{i}", 0) for i in range(200)])

        def drain(backend: Backend) -> list[str]:
            got: list[Delivery] = []
            while batch := backend.queue.receive(max_messages=5, visibility_timeout=60):
                got.extend(batch)
            return [d.message.dedup_id for d in got]

        with ThreadPoolExecutor(max_workers=8) as pool:
            leased = [dedup for part in pool.map(drain, backends) for dedup in part]
        assert sorted(leased) == sorted(f"r{i}:0:0:a" for i in range(200))
    finally:
        for backend in backends:
            backend.close()


def test_a_poison_row_is_dead_lettered_with_its_reason(
    pg_backend: Backend, sql: psycopg.Connection
) -> None:
    """Given a queued row whose body is not a transition message, when a worker receives,
    then the row moves to dead_letters with the field that is wrong, is reported once, and
    the good message behind it is still delivered."""
    sql.execute(
        "INSERT INTO queue (dedup_id, group_id, thread_id, body) VALUES ('bad', 'p1', 'p1', %s)",
        ('{"thread_id": "p1", "step": "zero"}',),
    )
    pg_backend.queue.send([message("p2", 0)])
    got = pg_backend.queue.receive(max_messages=5)
    assert [d.message.thread_id for d in got] == ["p2"]
    dead = sql.execute("SELECT dedup_id, reason FROM dead_letters").fetchall()
    assert [d[0] for d in dead] == ["bad"] and "step" in dead[0][1]
    poisoned = pg_backend.queue.take_poisoned()  # type: ignore[attr-defined]
    assert [p.thread_ids for p in poisoned] == [("p1",)]
    assert pg_backend.queue.take_poisoned() == []  # type: ignore[attr-defined]


def test_notifications_are_rows_any_host_can_read(pg_backend: Backend, pg_uri: str) -> None:
    note = Notification(kind="suspended", thread_id="n1", step=1, summary="approve?")
    pg_backend.notifier.notify(note)
    other = postgres_backend(pg_uri)
    try:
        assert other.notifier.read_all() == [note]  # type: ignore[attr-defined]
    finally:
        other.close()
