"""The snapshot segments a merge retired, on AWS (`backends/segment_runs.py`, `disposal.py`,
`durable_graph/leftovers.py`): the worker, whose role may not delete payload objects, leaves
them in the table's leftovers once the merging step is committed; the sweeper, whose role may,
deletes them once `GRACE` has passed and nothing still names them; the thread then reads at
every step (old ones through the newest snapshot), verifies, exports a bundle that verifies,
and stores one copy of each item in segments. Small thresholds (a snapshot every 8 turns, runs
of 2 merged) make a 64-turn chat of 1 KB turns merge often; the real worker handler runs each
turn from SQS on moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from durable_graph import timetravel
from durable_graph.backend import Backend
from durable_graph.backends.aws.sweeper import sweep
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import SEGMENT_CONTENT_TYPE, read_snapshot
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.erasure import erase
from durable_graph.leftovers import clear_leftovers
from durable_graph.ports.leftovers import Leftover
from durable_graph.verification import verify_thread
from tests.aws.conftest import AwsWorld
from tests.aws.graphs import chat_text
from tests.aws.stored import stored
from tests.aws.test_leftovers import EARLY, LATE, leftovers, sweeper, worker_backend
from tests.conformance.test_encryption import ALICE
from tests.conformance.test_lost_appends import stored as held
from tests.conformance.test_merged_segments import use_thresholds

CHAT = "tests.aws.graphs:chat_graph"
TURNS = 64
EVERY, FANIN = 8, 2


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_thresholds(monkeypatch, EVERY, FANIN)
    yield


@pytest.fixture
def world(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    """A 64-turn chat run by the worker handler, one SQS message a turn."""
    built = aws_factory(graph=CHAT)
    built.rt.graph.start({"limit": TURNS}, thread_id="chat")
    built.drain()
    return built


def retired(backend: Backend) -> list[Leftover]:
    now = datetime.now(UTC) + LATE
    return [left for left in leftovers(backend).due(now, 1000) if left.kind == "retired"]


def refs_of(lefts: list[Leftover]) -> list[PayloadRef]:
    return [ref for left in lefts for ref in left.refs]


def expected(turns: int) -> list[str]:
    return [chat_text(turn) for turn in range(turns)]


def cold(backend: Backend) -> RecordStore:
    """A reader with nothing cached (another process)."""
    return RecordStore(backend.checkpoints.inner, backend.checkpoints.payloads)


def reads_back(backend: Backend, steps: range) -> None:
    for step in steps:
        record = cold(backend).get_checkpoint("chat", step)
        assert record is not None and record.values["messages"] == expected(step)


def test_the_worker_leaves_retired_segments_and_the_sweeper_deletes_them(world: AwsWorld) -> None:
    """Given a 64-turn chat run by the worker, whose merges retired segments
    Then every retired segment is still stored and left in the table, named by its merging
    step, which lists it as retired
    When the sweeper runs before the grace period is over
    Then it deletes nothing
    When it runs after
    Then every one is deleted and forgotten, the segments the newest snapshot names stay, the
    store holds fewer bytes and at most 2x the raw messages, and every step reads back cold,
    the thread verifies, and its bundle verifies."""
    backend = worker_backend(world)
    assert world.head("chat").values["messages"] == expected(TURNS)
    lefts = retired(backend)
    assert len(lefts) >= 4
    for left in lefts:
        row = backend.checkpoints.inner.get_checkpoint("chat", left.step or -1)
        assert row is not None and row.snap is not None
        listed = {r["sha256"] for r in read_snapshot(backend.payloads, row.snap).retired}
        assert {ref.sha256 for ref in left.refs} <= listed
    gone = refs_of(lefts)
    assert all(held(backend, ref) for ref in gone)
    before = stored(backend)

    early = sweep(sweeper(world), now=datetime.now(UTC) + EARLY)
    assert early.leftover_chunks_deleted == 0 and len(retired(backend)) == len(lefts)

    late = sweep(sweeper(world), now=datetime.now(UTC) + LATE)

    assert late.leftover_chunks_deleted == len({ref.sha256 for ref in gone})
    assert not any(held(backend, ref) for ref in gone) and retired(backend) == []
    head = backend.checkpoints.inner.head_checkpoint("chat")
    newest = backend.checkpoints.inner.get_checkpoint("chat", head.anchor) if head else None
    assert newest is not None and newest.snap is not None
    entry = read_snapshot(backend.payloads, newest.snap).fields["messages"]
    assert all(held(backend, PayloadRef.model_validate(s)) for s in entry["segs"])
    after = stored(backend)
    raw = sum(map(len, expected(TURNS)))
    segments = after.by_type[SEGMENT_CONTENT_TYPE]
    assert after.total < before.total and before.by_type[SEGMENT_CONTENT_TYPE] > 2 * segments
    assert after.total <= 2 * raw, f"{after} for {raw} raw bytes"
    reads_back(backend, range(TURNS + 1))
    assert verify_thread(backend, "chat").ok
    assert verify_bundle(build_bundle(backend, "chat")).ok


def test_forks_from_an_old_step_and_the_head_read_the_same_after_the_sweep(
    world: AwsWorld,
) -> None:
    """Given a fork of the chat from step 20 (whose snapshot's segments were merged away) and
    one from step 63, each continued by the worker for 8 more turns
    When the sweeper deletes the origin's retired segments (and the forks' own)
    Then both forks read back, cold, as before, hold the messages they should, and verify (a
    fork writes segments salted for itself: none is the origin's)."""
    for fork, step in (("old", 20), ("new", TURNS - 1)):
        timetravel.fork(world.rt.graph, "chat", step, fork, values={"limit": step + 8})
        world.drain()
    backend = world.rt.backend
    forks = {fork: cold(backend).head_checkpoint(fork) for fork in ("old", "new")}
    sweep(sweeper(world), now=datetime.now(UTC) + LATE)
    assert retired(backend) == []
    for fork, turns in (("old", 28), ("new", TURNS + 7)):
        before, after = forks[fork], cold(backend).head_checkpoint(fork)
        assert before is not None and after is not None
        assert after.values["messages"] == before.values["messages"] == expected(turns)
        assert verify_thread(backend, fork).ok
    reads_back(backend, range(0, TURNS + 1, 5))


def test_an_erased_thread_deletes_nothing_more_and_still_verifies(world: AwsWorld) -> None:
    """Given the chat's messages erased (which drops its snapshots and deletes their segments,
    retired ones included) before the sweeper ran
    When the sweeper runs after the grace period
    Then it forgets the leftovers, deletes nothing more, and the thread verifies."""
    backend = sweeper(world).backend
    erase(backend, "chat", fields=["messages"], reason="GDPR Art. 17", actor=ALICE)
    assert retired(backend)
    cleared = clear_leftovers(backend, clock=world.rt.graph.clock, now=datetime.now(UTC) + LATE)
    assert cleared.leftovers >= 4 and cleared.deleted == 0
    assert retired(backend) == [] and verify_thread(backend, "chat").ok


def test_a_forged_leftover_deletes_nothing(world: AwsWorld) -> None:
    """Given a retired leftover naming a segment the newest snapshot still holds (forged, or a
    bug), and one naming a step that never merged
    When the sweeper runs after the grace period
    Then neither object is deleted and the chat reads back."""
    backend = worker_backend(world)
    head = backend.checkpoints.inner.head_checkpoint("chat")
    newest = backend.checkpoints.inner.get_checkpoint("chat", head.anchor) if head else None
    assert newest is not None and newest.snap is not None
    live = PayloadRef.model_validate(
        read_snapshot(backend.payloads, newest.snap).fields["messages"]["segs"][0]
    )
    leave = leftovers(backend).leave
    leave("chat", [live], step=newest.step, kind="retired")
    leave("chat", [live], step=3, kind="retired")
    sweep(sweeper(world), now=datetime.now(UTC) + LATE)
    assert held(backend, live) and retired(backend) == []
    reads_back(backend, range(TURNS - 3, TURNS + 1))
