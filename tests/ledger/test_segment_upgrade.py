"""A store whose snapshots were written by the release before merged segments (snapshot format
2: a list as one unsalted segment per snapshot, `docs/record-format.md` §11) reads, verifies
and continues: the first snapshot this release writes keeps the list as one salted segment
of all of it, later ones merge in runs (`backends/segment_runs.py`), and nothing the old
snapshots name is deleted. A list re-set after a snapshot whose segments were merged away
is folded from the rows instead of read through the newest snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph
from durable_graph.backends import segment_runs, snapshots
from durable_graph.backends.local import local_backend
from durable_graph.backends.record_fold import Materialiser
from durable_graph.backends.records import RecordStore
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.messages import add_messages, messages_json
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.conformance.test_merged_segments import expected, run, snaps, talk

EVERY = 4
NO_LIMIT = {"recursion_limit": 1_000_000}


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", EVERY)
    monkeypatch.setattr(snapshots, "SEGMENT_MIN_ITEMS", EVERY)
    monkeypatch.setattr(segment_runs, "MERGE_FANIN", 2)
    monkeypatch.setattr(segment_runs, "BASE_ITEMS", EVERY)
    yield


def format_2_runs(
    put: Any, salt: str, items: list[Any], anchor: int, before: Any
) -> tuple[dict[str, Any], list[PayloadRef]]:
    """How the release before wrote a list: the previous snapshot's segments plus one
    unsalted segment of the items appended since (no counts, levels or merges)."""
    if before is not None and "segs" in before and before["a"] == anchor:
        segs, start = list(before["segs"]), int(before["n"])
    else:
        segs, start = [], 0
    if len(items) > start:
        segs.append(put(items[start:]).model_dump(mode="json"))
    return {"segs": segs, "n": len(items)}, []


def test_a_thread_snapshotted_by_the_release_before_reads_verifies_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    with monkeypatch.context() as old:
        old.setattr(snapshots, "SNAPSHOT_FORMAT", 2)
        old.setattr(snapshots, "list_runs", format_2_runs)
        old.setattr(snapshots, "retirement", lambda *args: ({}, ()))
        backend = local_backend(tmp_path, clock=clock)
        run(backend, clock, 30)
        backend.close()
    backend = local_backend(tmp_path, clock=clock)  # this release, nothing cached
    written = snaps(backend)
    assert {s.fields["messages"].get("cnt") is None for _, s in written} == {True}
    old_segments = [
        PayloadRef.model_validate(r) for _, s in written for r in s.fields["messages"]["segs"]
    ]
    run(backend, clock, 90)
    after = snaps(backend)
    first_new = after[len(written)][1].fields["messages"]
    assert first_new["cnt"] == [first_new["n"]] and len(first_new["segs"]) == 1
    assert len(after[-1][1].fields["messages"]["segs"]) <= 4  # merged in runs since
    assert all(backend.payloads.get(ref) for ref in old_segments)
    for step in range(0, 92, 5):
        record = RecordStore(backend.checkpoints.inner, backend.payloads).get_checkpoint("t", step)
        assert record is not None
        assert record.values["messages"] == expected(step - (step > 30)), step
    assert verify_thread(backend, "t").ok
    backend.close()


class Edited(BaseModel):
    messages: Annotated[list[Any], add_messages] = Field(default_factory=list)
    turns: int = 0
    limit: int = 10


def chat_or_edit(state: Edited) -> dict[str, Any]:
    """A new message a turn; at turn 30 the first message is edited in place instead (the
    same id: `add_messages` replaces it, so the list is re-set, not appended to)."""
    if state.turns == 30:
        return {"messages": [{"role": "user", "content": "edited", "id": "m0"}], "turns": 31}
    message = {"role": "user", "content": f"message {state.turns}", "id": f"m{state.turns}"}
    return {"messages": [message], "turns": state.turns + 1}


def again(state: Edited) -> str:
    return "say" if state.turns < state.limit else END


_edits = StateGraph(Edited)
_edits.add_node("say", chat_or_edit)
_edits.add_edge(START, "say")
_edits.add_conditional_edges("say", again, ["say", END])
edits = _edits.compile(name="tests.ledger.test_segment_upgrade:edits")


def said(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["id"], m["content"]) for m in messages_json(values["messages"])]


def test_a_list_re_set_after_its_old_segments_were_merged_away_is_folded_from_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a chat whose list merged its segments for 30 turns and was then re-set (a
    message edited), then an old step whose snapshot lost segments to those merges cannot be
    read through the newest snapshot (another list since) and is folded from the rows: every
    step reads back as written."""
    clock = ManualClock()
    backend = local_backend(tmp_path, clock=clock)
    edits.with_backend(backend, clock=clock).invoke({"limit": 44}, NO_LIMIT, thread_id="t")
    written = snaps(backend)
    newest = written[-1][1].fields["messages"]
    assert any(s.fields["messages"]["a"] != newest["a"] and s.step < 20 for _, s in written)
    folded: list[int | None] = []
    fold = Materialiser.fold_rows

    def spy(self: Materialiser, rows: Any, keep: Any = None, plain_from: Any = None) -> Any:
        folded.append(plain_from)
        return fold(self, rows, keep, plain_from)

    monkeypatch.setattr(Materialiser, "fold_rows", spy)
    for step in range(1, 45):
        record = RecordStore(backend.checkpoints.inner, backend.payloads).get_checkpoint("t", step)
        assert record is not None
        turns = [i for i in range(step) if i != 30]  # turn 30 edits, appends nothing
        want = [(f"m{i}", f"message {i}") for i in turns]
        if step > 30:
            want[0] = ("m0", "edited")
        assert said(record.values) == want, step
    assert any(start is not None for start in folded)
    assert verify_thread(backend, "t").ok
    backend.close()


def test_a_fork_of_a_step_whose_snapshot_lost_segments_starts_from_its_state(
    tmp_path: Path,
) -> None:
    """Given a 60-step chat, then a fork of step 9 (its snapshot's segments were merged away
    and deleted) starts from the 9 messages of that step, read cold, and verifies, as does
    the origin."""
    clock = ManualClock()
    backend = local_backend(tmp_path, clock=clock)
    run(backend, clock, 60)
    nine = [s for step, s in snaps(backend) if step <= 9][-1]
    assert nine.step < snaps(backend)[-1][1].gone_before
    app = talk.with_backend(backend, clock=clock)
    fork(app, "t", 9, "f")
    forked = RecordStore(backend.checkpoints.inner, backend.payloads).head_checkpoint("f")
    assert forked is not None and forked.values["messages"] == expected(9)
    assert verify_thread(backend, "f").ok and verify_thread(backend, "t").ok
    backend.close()
