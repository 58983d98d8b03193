"""Lost appends' chunks on AWS (`backends/aws/leftovers.py`, `durable_graph/leftovers.py`): a
function whose role may not delete payload objects (the worker) leaves the chunks of a step or
task result that lost its conditional append in the table's leftovers, and the sweeper, whose
role may, deletes them once `GRACE` has passed; never a chunk the record that won names, nor
an object addressed by content alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import AwsRuntime, build_runtime
from durable_graph.backends.aws.leftovers import REFS_PER_ITEM
from durable_graph.backends.aws.sweeper import sweep
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.fanin import done_key
from durable_graph.leftovers import GRACE, clear_leftovers
from durable_graph.ports.leftovers import Leftovers
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from tests.aws.backend_factory import serialized
from tests.aws.conftest import AwsWorld
from tests.conformance.test_encryption import ALICE, FACTORIES, holds
from tests.conformance.test_lost_appends import (
    object_count,
    part_chunks,
    race_a_step,
    race_the_big_task,
    resume_to_the_end,
    settle,
    stored,
)

COUNT, WIDTH = 400, 200  # about 82 KB of JSON per part: over the 64 KiB inline bound, a chunk
EARLY = timedelta(minutes=1)
LATE = GRACE + timedelta(minutes=1)


def worker_backend(world: AwsWorld) -> Backend:
    """The backend of a function the stack gives no payload delete (the worker's), its calls
    to moto made one at a time: the races here run two workers in threads, and moto's
    in-process DynamoDB is not thread-safe (a TransactWriteItems that fails restores a copy of
    the table taken when it began, undoing what another thread committed meanwhile: the
    winner's `done#` row and count vanished about 1 run in 10 under load). Real DynamoDB
    isolates transactions; `tests/aws/backend_factory.py` serializes the same way."""
    backend = build_runtime(world.rt.settings, serialized(world.clients)).backend
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
    race = race_a_step(backend, None, COUNT)
    winner, mine, theirs = race.winner, race.mine, part_chunks(race.winner)
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
    resume_to_the_end(race, COUNT)


def test_a_task_result_that_lost_its_row_is_left_and_then_deleted(world: AwsWorld) -> None:
    """Given the big task of a fan-out run by two workers at once, each writing its writes
    and io as chunks, one `done#` row created
    Then the other run's two chunks are stored and left, named by the row's key
    When the sweeper runs after the grace period
    Then they are gone, the row's own chunks stay, and the thread completes and verifies."""
    backend = worker_backend(world)
    race = race_the_big_task(backend, None, COUNT)
    assert object_count(backend) == race.before + 4  # the loser's two are still there
    (left,) = leftovers(backend).due(datetime.now(UTC) + LATE, 10)
    assert (left.thread_id, left.step, left.row) == ("twice", None, race.key)
    assert not {r.sha256 for r in left.refs} & {r.sha256 for r in race.kept}

    report = sweep(sweeper(world), now=datetime.now(UTC) + LATE)

    assert report.leftover_chunks_deleted == 2
    assert not any(stored(backend, ref) for ref in left.refs)
    assert all(stored(backend, ref) for ref in race.kept)
    assert object_count(backend) == race.before + 2
    settle(backend, race, COUNT)


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
    race = race_a_step(backend, None, COUNT)
    winner, theirs = race.winner, part_chunks(race.winner)
    sweep(sweeper(world), now=datetime.now(UTC) + LATE)  # the real leftover, deleted
    assert not any(stored(backend, ref) for ref in race.mine)
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
    resume_to_the_end(race, COUNT)


def test_a_sealed_lost_append_is_left_and_then_deleted(tmp_path: Path) -> None:
    """Given encryption at rest on (KMS envelope keys, moto) and a worker whose step lost its
    append, then its sealed chunks are left (no plaintext in the leftover item), and the
    sweeper's pass after the grace period deletes them and keeps the winner's."""
    clock = ManualClock()
    with FACTORIES["aws-moto"](tmp_path, clock) as encrypted:
        worker = dataclasses.replace(encrypted.backend, deletes_payloads=False)
        race = race_a_step(worker, clock, COUNT)
        winner, mine = race.winner, race.mine
        assert all(stored(worker, ref) for ref in mine)
        assert not holds(encrypted.stored(), "ask-000001-")  # an interrupt payload's row

        early = clear_leftovers(encrypted.backend, clock=clock, now=clock.now() + EARLY)
        late = clear_leftovers(encrypted.backend, clock=clock, now=clock.now() + LATE)

        assert (early.deleted, late.deleted, late.leftovers) == (0, 2, 1)
        assert not any(stored(worker, ref) for ref in mine)
        assert all(stored(worker, ref) for ref in part_chunks(winner))
        assert verify_thread(worker, "race").ok


def test_a_leftover_of_a_thread_erased_by_key_destruction_is_forgotten(tmp_path: Path) -> None:
    """Given encryption on and a task result that lost its row in a worker, then the thread
    erased by destroying its data key (its `done#` row can no longer be opened)
    When the sweeper's pass runs after the grace period
    Then the leftover is forgotten without deleting anything (not retried at every sweep)."""
    clock = ManualClock()
    with FACTORIES["aws-moto"](tmp_path, clock) as encrypted:
        worker = dataclasses.replace(encrypted.backend, deletes_payloads=False)
        race = race_the_big_task(worker, clock, COUNT)
        settle(worker, race, COUNT)
        erase(worker, "twice", reason="GDPR Art. 17", actor=ALICE)
        due = leftovers(worker).due(clock.now() + LATE, 10)
        # `settle` runs the released tasks in parallel: the fan-in step may be built by both
        # and one lose its append, leaving a step leftover beside the row's (about 1 run in 15)
        (left,) = [x for x in due if x.row == race.key]

        cleared = clear_leftovers(encrypted.backend, clock=clock, now=clock.now() + LATE)

        assert cleared.leftovers == len(due)
        assert {ref.sha256 for ref in left.refs} <= set(cleared.kept)
        assert all(stored(worker, ref) for ref in left.refs)
        assert leftovers(worker).due(clock.now() + LATE, 10) == []


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
