"""Lost appends' chunks on AWS (`backends/aws/leftovers.py`, `durable_graph/leftovers.py`): a
function whose role may not delete payload objects (the worker) leaves the chunks of a step or
task result that lost its conditional append in the table's leftovers, and the sweeper, whose
role may, deletes them once `GRACE` has passed; never a chunk the record that won names, nor
an object addressed by content alone."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import AwsRuntime, build_runtime
from durable_graph.backends.aws.leftovers import REFS_PER_ITEM
from durable_graph.backends.aws.sweeper import sweep
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.engine import Outcome
from durable_graph.fanin import done_key, result_chunks
from durable_graph.leftovers import GRACE, clear_leftovers
from durable_graph.ports import Leftovers
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.sealed_records import open_fields
from durable_graph.verification import verify_thread
from tests import big_state_graphs
from tests.aws.conftest import AwsWorld
from tests.big_state_graphs import fanout_parts_graph, many_small, parts_graph
from tests.conformance.test_encryption import FACTORIES, holds
from tests.conformance.test_lost_appends import object_count, part_chunks, stored

COUNT, WIDTH = 400, 200  # about 82 KB of JSON per part: over the 64 KiB inline bound, a chunk
EARLY = timedelta(minutes=1)
LATE = GRACE + timedelta(minutes=1)


def worker_backend(world: AwsWorld) -> Backend:
    """The backend of a function the stack gives no payload delete (the worker's)."""
    backend = world.rt.backend
    assert not backend.deletes_payloads and backend.leftovers is not None
    return backend


def sweeper(world: AwsWorld) -> AwsRuntime:
    """The sweeper's runtime: the same resources, with the payload delete its role has."""
    settings = world.rt.settings.model_copy(update={"payload_deletes": True})
    return build_runtime(settings, world.clients)


def leftovers(backend: Backend) -> Leftovers:
    assert backend.leftovers is not None
    return backend.leftovers


def left_now(backend: Backend) -> int:
    return len(leftovers(backend).due(datetime.now(UTC) + LATE, 100))


@pytest.fixture
def world(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    return aws_factory(graph="tests.big_state_graphs:parts_graph")


def lose_a_race(
    backend: Backend, clock: ManualClock | None = None
) -> tuple[Checkpoint, list[PayloadRef]]:
    """One message run by two workers, the loser sealing its step (an interrupt payload and
    an io response, each a chunk) before the winner commits; then the loser commits. The
    winner, and the loser's chunks."""
    app = parts_graph.with_backend(backend, clock=clock)
    app.start({"count": COUNT, "width": WIDTH}, thread_id="race")
    (delivery,) = backend.queue.receive(max_messages=1, visibility_timeout=30.0)
    loser = app.engine("loser")
    lost = loser.prepare(delivery.message)
    assert isinstance(lost, Checkpoint)
    theirs = app.engine("winner").execute(delivery.message)
    assert theirs.kind == "committed" and theirs.checkpoint is not None
    mine = part_chunks(backend.checkpoints.opened(lost))
    assert len(mine) == 2

    outcome = loser.commit(lost, previous_status="running")

    assert outcome.kind == "duplicate"
    backend.queue.ack(delivery)
    winner = backend.checkpoints.get_checkpoint("race", lost.step)
    assert winner is not None and winner.hash == theirs.checkpoint.hash
    return winner, mine


def test_a_workers_lost_append_is_left_and_the_sweeper_deletes_it_after_the_grace(
    world: AwsWorld,
) -> None:
    """Given a worker (no payload delete) whose step lost its append to another run of the
    same message
    Then its two chunks are still stored, and left in the table for the sweeper
    When the sweeper runs before the grace period is over
    Then it deletes nothing
    When it runs after
    Then the loser's chunks are gone, the winner's stay, the leftover is forgotten, and the
    thread verifies and resumes to the end."""
    backend = worker_backend(world)
    winner, mine = lose_a_race(backend)
    theirs = part_chunks(winner)
    assert all(stored(backend, ref) for ref in [*mine, *theirs])
    (left,) = leftovers(backend).due(datetime.now(UTC) + LATE, 10)
    assert (left.thread_id, left.step, left.row) == ("race", winner.step, None)
    assert sorted(r.sha256 for r in left.refs) == sorted(r.sha256 for r in mine)

    early = sweep(sweeper(world), now=datetime.now(UTC) + EARLY)
    assert early.leftover_chunks_deleted == 0
    assert all(stored(backend, ref) for ref in mine) and left_now(backend) == 1

    late = sweep(sweeper(world), now=datetime.now(UTC) + LATE)

    assert late.leftover_chunks_deleted == 2
    assert not any(stored(backend, ref) for ref in mine)
    assert all(stored(backend, ref) for ref in theirs)
    assert left_now(backend) == 0
    assert verify_thread(backend, "race").ok
    app = parts_graph.with_backend(backend)
    app.resume("race", resume_value={"rows": ["yes"]})
    assert app.get_state("race").values["looked_up"] == COUNT


def test_a_task_result_that_lost_its_row_is_left_and_then_deleted(world: AwsWorld) -> None:
    """Given the big task of a fan-out run by two workers at once, each writing its writes
    and io as chunks, one `done#` row created
    Then the other run's two chunks are stored and left, named by the row's key
    When the sweeper runs after the grace period
    Then they are gone, the row's own chunks stay, and the thread completes and verifies."""
    backend = worker_backend(world)
    app = fanout_parts_graph.with_backend(backend)
    app.start({"count": COUNT, "width": WIDTH}, thread_id="twice")
    deliveries = backend.queue.receive(max_messages=10, visibility_timeout=30.0)
    (big,) = [d for d in deliveries if d.message.task.id.endswith(":0")]
    before = object_count(backend)
    big_state_graphs.RACE.append(threading.Barrier(2))
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(app.engine(f"w{i}").prepare, big.message) for i in range(2)]
            outcomes = [run.result(timeout=120) for run in runs]
    finally:
        big_state_graphs.RACE.clear()
    assert all(isinstance(o, Outcome) and o.progress == (1, 2) for o in outcomes)
    key = done_key(0, big.message.task.id)
    row = backend.checkpoints.get_record("twice", key)
    assert row is not None
    kept = result_chunks(open_fields(row.value, backend.checkpoints.keys, "twice", key))
    assert len(kept) == 2
    assert object_count(backend) == before + 4  # the loser's two are still there
    (left,) = leftovers(backend).due(datetime.now(UTC) + LATE, 10)
    assert (left.thread_id, left.step, left.row) == ("twice", None, key)
    assert not {r.sha256 for r in left.refs} & {r.sha256 for r in kept}

    report = sweep(sweeper(world), now=datetime.now(UTC) + LATE)

    assert report.leftover_chunks_deleted == 2
    assert not any(stored(backend, ref) for ref in left.refs)
    assert all(stored(backend, ref) for ref in kept)
    assert object_count(backend) == before + 2
    for delivery in deliveries:
        backend.queue.release(delivery)
    app.run_until_settled("twice")
    values = app.get_state("twice").values
    assert values["found"] == [*many_small(COUNT, WIDTH, "out"), "small"]
    assert verify_thread(backend, "twice").ok


def test_a_leftover_never_deletes_what_a_record_names_or_a_shared_object(
    world: AwsWorld,
) -> None:
    """Given leftovers (as a damaged or forged one could say) naming the chunks of the step
    that won, an object addressed by content alone, and a salted chunk under a step that was
    never written
    When the sweeper runs after the grace period
    Then every one of those objects is still stored, the leftovers are forgotten, and the
    thread verifies and resumes."""
    backend = worker_backend(world)
    winner, mine = lose_a_race(backend)
    sweep(sweeper(world), now=datetime.now(UTC) + LATE)  # the real leftover, deleted
    assert not any(stored(backend, ref) for ref in mine)
    theirs = part_chunks(winner)
    shared = raw_payloads(backend.payloads).put(b'{"another thread": 1}')
    spare = raw_payloads(backend.payloads).put(b'"a chunk"', theirs[0].content_type)
    leftovers(backend).leave("race", [*theirs, shared], step=winner.step)
    leftovers(backend).leave("race", [spare], step=winner.step + 5)
    leftovers(backend).leave("nobody", [spare], row=done_key(0, "0:x"))

    report = sweep(sweeper(world), now=datetime.now(UTC) + LATE)

    assert report.leftover_chunks_deleted == 0
    assert all(stored(backend, ref) for ref in [*theirs, shared, spare])
    assert left_now(backend) == 0
    assert verify_thread(backend, "race").ok
    app = parts_graph.with_backend(backend)
    app.resume("race", resume_value={"rows": ["yes"]})
    assert app.get_state("race").values["looked_up"] == COUNT


def test_a_sealed_lost_append_is_left_and_then_deleted(tmp_path: Path) -> None:
    """Given encryption at rest on (KMS envelope keys, moto) and a worker whose step lost its
    append, then its sealed chunks are left (no plaintext in the leftover item), and the
    sweeper's pass after the grace period deletes them and keeps the winner's."""
    clock = ManualClock()
    with FACTORIES["aws-moto"](tmp_path, clock) as encrypted:
        worker = dataclasses.replace(encrypted.backend, deletes_payloads=False)
        winner, mine = lose_a_race(worker, clock)
        assert all(stored(worker, ref) for ref in mine)
        assert not holds(encrypted.stored(), "ask-000001-")  # an interrupt payload's row

        early = clear_leftovers(encrypted.backend, clock=clock, now=clock.now() + EARLY)
        late = clear_leftovers(encrypted.backend, clock=clock, now=clock.now() + LATE)

        assert (early.deleted, late.deleted, late.leftovers) == (0, 2, 1)
        assert not any(stored(worker, ref) for ref in mine)
        assert all(stored(worker, ref) for ref in part_chunks(winner))
        assert verify_thread(worker, "race").ok


def test_many_chunks_are_left_in_items_under_the_item_limit(world: AwsWorld) -> None:
    """Given more refs than one item holds, then they are left as several items, each under
    DynamoDB's 400 KB, and read back in full."""
    backend = worker_backend(world)
    refs = [
        PayloadRef(uri=f"sha256/{i:064x}", sha256=f"{i:064x}", size=1, content_type="x/y")
        for i in range(REFS_PER_ITEM * 2 + 1)
    ]
    leftovers(backend).leave("many", refs, step=3)

    items = world.clients.dynamodb.query(
        TableName=world.resources.settings.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": names.LEFTOVERS_PARTITION}},
    )["Items"]
    assert len(items) == 3
    assert all(len(item[names.BODY_ATTRIBUTE]["S"]) < 350 * 1024 for item in items)
    due = leftovers(backend).due(datetime.now(UTC) + LATE, 10)
    assert sorted(r.sha256 for left in due for r in left.refs) == [r.sha256 for r in refs]
