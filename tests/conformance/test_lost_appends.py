"""A step whose conditional append loses leaves no chunk behind, on every backend
(`orphans.py`): the chunks its sealing wrote (an interrupt payload and an io response kept
whole, salted for that record alone) are deleted once another writer's record of the step won,
and so are the chunks of a fan-out task's result when a racing run of the task created its
`done#` row first; the winner's chunks stay, and the thread verifies and runs on."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.engine import Outcome
from durable_graph.errors import PayloadCorrupted
from durable_graph.fanin import done_key, result_chunks
from durable_graph.payloads import MARKER
from durable_graph.ports.transition_queue import Delivery
from durable_graph.runtime import CompiledGraph
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.sealed_records import open_fields
from durable_graph.verification import verify_thread
from tests import big_state_graphs
from tests.big_state_graphs import fanout_parts_graph, many_small, parts_graph
from tests.conformance.store_contents import contents
from tests.conformance.test_encryption import Encrypted

COUNT, WIDTH = 10_000, 200  # about 2 MB of JSON per part: each one a chunk


def stored(backend: Backend, ref: PayloadRef) -> bool:
    try:
        raw_payloads(backend.payloads).get(ref)
    except PayloadCorrupted:
        return False
    return True


def part_chunks(record: Checkpoint) -> list[PayloadRef]:
    """The chunks of the record's interrupt payload and io responses kept whole."""
    parts: list[Any] = [record.interrupt.payload if record.interrupt else None]
    parts += [io.response for io in record.io]
    return [PayloadRef.model_validate(p[MARKER]) for p in parts if isinstance(p, dict)]


def object_count(backend: Backend) -> int:
    """Payload objects stored (object versions on S3; PostgreSQL keeps them as rows)."""
    rows = [r for r in contents(backend)["rows"] if r.startswith("payloads:")]
    return len(contents(backend)["objects"]) + len(rows)


@dataclass
class StepRace:
    """A step run by two workers, after the loser's commit (`race_a_step`)."""

    app: CompiledGraph
    winner: Checkpoint
    mine: list[PayloadRef]  # the chunks the loser's sealing wrote


def race_a_step(backend: Backend, clock: ManualClock | None, count: int) -> StepRace:
    """One message run by two workers, the loser sealing its step (an interrupt payload and
    io response of `count` rows, each a chunk) before the winner commits; then the loser
    commits, a duplicate, and the message is acknowledged."""
    app = parts_graph.with_backend(backend, clock=clock)
    app.start({"count": count, "width": WIDTH}, thread_id="race")
    (delivery,) = backend.queue.receive(max_messages=1, visibility_timeout=30.0)
    loser = app.engine("loser")
    lost = loser.prepare(delivery.message)
    assert isinstance(lost, Checkpoint)
    theirs = app.engine("winner").execute(delivery.message)
    assert theirs.kind == "committed" and theirs.checkpoint is not None
    mine = part_chunks(backend.checkpoints.opened(lost))  # sealed parts opened
    assert len(mine) == 2 and all(stored(backend, ref) for ref in mine)

    outcome = loser.commit(lost, previous_status="running")

    assert outcome.kind == "duplicate"
    backend.queue.ack(delivery)  # handled: the thread's queue group is free again
    winner = backend.checkpoints.get_checkpoint("race", lost.step)
    assert winner is not None and winner.hash == theirs.checkpoint.hash
    assert len(part_chunks(winner)) == 2
    return StepRace(app, winner, mine)


def resume_to_the_end(race: StepRace, count: int) -> None:
    race.app.resume("race", resume_value={"rows": ["yes"]})
    assert race.app.get_state("race").values["looked_up"] == count


def lose_a_race(backend: Backend, clock: ManualClock) -> None:
    """A step that lost its race (`race_a_step`): its chunks are gone, the winner's stored,
    and the thread verifies and resumes to the end."""
    race = race_a_step(backend, clock, COUNT)
    assert not any(stored(backend, ref) for ref in race.mine)
    assert all(stored(backend, ref) for ref in part_chunks(race.winner))
    assert verify_thread(backend, "race").ok
    resume_to_the_end(race, COUNT)


def test_a_step_that_lost_its_append_leaves_no_chunk(backend: Backend, clock: ManualClock) -> None:
    """Given one message run by two workers, the loser sealing its step before the winner
    commits, when the loser commits, then it is a duplicate, its chunks are gone, the winner's
    are stored, and the thread verifies and resumes to the end."""
    lose_a_race(backend, clock)


def test_a_sealed_step_that_lost_its_append_leaves_no_chunk(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """The same with encryption at rest: the loser's sealed chunks are deleted too."""
    lose_a_race(encrypted.backend, clock)


@dataclass
class TaskRace:
    """The big task of a fan-out run by two workers at once (`race_the_big_task`)."""

    app: CompiledGraph
    deliveries: list[Delivery]
    key: str  # the task's `done#` row
    kept: list[PayloadRef]  # the chunks that row names
    before: int  # payload objects before the two runs


def race_the_big_task(backend: Backend, clock: ManualClock | None, count: int) -> TaskRace:
    """Start the fan-out of `count` rows and run its big task twice at once, both past the
    check for its `done#` row, each writing its writes and io as chunks: one row is created,
    counting the task once, and it names two chunks, stored."""
    app = fanout_parts_graph.with_backend(backend, clock=clock)
    app.start({"count": count, "width": WIDTH}, thread_id="twice")
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
    assert len(kept) == 2 and all(stored(backend, ref) for ref in kept)
    return TaskRace(app, deliveries, key, kept, before)


def settle(backend: Backend, race: TaskRace, count: int) -> None:
    """Let the raced thread run on: it completes with the winner's result and verifies."""
    for delivery in race.deliveries:
        backend.queue.release(delivery)
    race.app.run_until_settled("twice")
    values = race.app.get_state("twice").values
    assert values["found"] == [*many_small(count, WIDTH, "out"), "small"]
    assert values["args_seen"] == [count, 0]
    assert verify_thread(backend, "twice").ok


def test_a_task_result_that_lost_its_row_leaves_no_chunk(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the big task of a fan-out run by two workers at once (both past the check for its
    `done#` row, each writing its 2 MB writes and io as chunks), then one row is created and
    counted once, the other run's chunks are deleted (two objects more, not four), and the
    thread completes with the winner's result and verifies."""
    race = race_the_big_task(backend, clock, COUNT)
    assert object_count(backend) == race.before + 2
    settle(backend, race, COUNT)
