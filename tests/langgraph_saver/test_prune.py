"""`prune` and `delete_for_runs` on an append-only ledger: what is kept is re-written into a new
generation of the thread, the old generation is erased as `delete_thread` erases it (key
destroyed, signed deletion record, values erased), and every chain still verifies."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from durable_graph.errors import InvalidInput
from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.langgraph_saver.manifest import read, stage
from durable_graph.verification import verify_thread
from tests.langgraph_saver.apps import review_app, run_turns

CONFIG: RunnableConfig = {"configurable": {"thread_id": "t1"}}


def _run(run_id: str) -> RunnableConfig:
    """The config of one run on "t1": LangGraph copies `run_id` into each checkpoint's
    metadata (as LangGraph's server passes it)."""
    return {"configurable": {"thread_id": "t1", "run_id": run_id}}


def _rows(saver: DurableGraphSaver, ledger_id: str) -> str:
    return json.dumps([r.to_stored_json() for r in saver.backend.checkpoints.ledger(ledger_id)])


def test_prune_keeps_the_latest_checkpoint_and_the_thread_goes_on(
    saver: DurableGraphSaver,
) -> None:
    # Given a thread of three turns, suspended at an interrupt in the third
    app = review_app(saver)
    run_turns(app, "t1", turns=2)
    app.invoke({"notes": ["card 4111-1111-1111-1111"]}, CONFIG)
    before = app.get_state(CONFIG)
    assert len(list(saver.list(CONFIG))) > 1

    # When LangGraph prunes it to its latest checkpoint
    saver.prune(["t1"], strategy="keep_latest")

    # Then one checkpoint is left, with the same values, pending interrupt and next node
    [only] = list(saver.list(CONFIG))
    after = app.get_state(CONFIG)
    assert only.checkpoint["id"] == before.config["configurable"]["checkpoint_id"]
    assert after.values == before.values and after.next == before.next == ("review",)
    assert [i.value for i in after.interrupts] == [i.value for i in before.interrupts]
    # and the app resumes from it as if nothing happened
    out = app.invoke(Command(resume="ok 2"), CONFIG)
    assert (
        out["notes"][-1] == "decision: ok 2"
        and out["notes"][: len(before.values["notes"])] == (before.values["notes"])
    )
    # and the old generation is erased (nothing decrypts, no row holds the value), its chain
    # ends in a signed deletion record, and both chains verify
    manifest, _ = read(saver.backend.checkpoints, "t1")
    assert manifest.generation == 1 and [e.generation for e in manifest.erased] == [0]
    last = saver.backend.checkpoints.ledger("t1")[-1]
    assert last.changes["$deleted"].v["by"] == "prune(keep_latest)"
    old, new = verify_thread(saver.backend, "t1"), verify_thread(saver.backend, "t1~1")
    assert old.ok and new.ok, (old.reason, new.reason)
    assert old.erased and last.step in old.signed_steps
    assert "4111-1111" not in _rows(saver, "t1")


def test_prune_of_a_thread_with_one_checkpoint_writes_nothing(saver: DurableGraphSaver) -> None:
    # Given a thread with one checkpoint
    config = saver.put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}},
        {
            "v": 4,
            "id": str(uuid4()),
            "ts": "2026-11-30T00:00:00+00:00",
            "channel_values": {"a": 1},
            "channel_versions": {"a": saver.get_next_version(None, None)},
            "versions_seen": {},
            "updated_channels": None,
        },
        {"source": "input", "step": -1, "parents": {}},
        {},
    )
    records = len(saver.backend.checkpoints.ledger("t1"))

    # When it is pruned
    saver.prune(["t1"])

    # Then nothing changed: no new generation, no record
    assert saver.get_tuple(config) is not None
    assert read(saver.backend.checkpoints, "t1")[0].generation == 0
    assert len(saver.backend.checkpoints.ledger("t1")) == records


def test_an_unknown_strategy_is_refused(saver: DurableGraphSaver) -> None:
    run_turns(review_app(saver), "t1", turns=1)
    with pytest.raises(InvalidInput, match="unknown prune strategy 'oldest'"):
        saver.prune(["t1"], strategy="oldest")
    assert len(list(saver.list(CONFIG))) > 1


def test_delete_for_runs_erases_the_runs_checkpoints_and_keeps_the_rest(
    saver: DurableGraphSaver,
) -> None:
    # Given a thread written by two runs, the first one with a secret
    app = review_app(saver)
    secret, kept = str(uuid4()), str(uuid4())
    app.invoke({"notes": ["card 4111-1111-1111-1111"], "drafts": 0}, _run(secret))
    cid = app.get_state(CONFIG).config["configurable"]["checkpoint_id"]
    app.invoke(Command(resume="ok"), _run(kept))
    runs = {t.metadata.get("run_id") for t in saver.list(CONFIG)}
    assert runs == {secret, kept}

    # When LangGraph deletes the first run
    saver.delete_for_runs([secret])

    # Then its checkpoints are gone, the other run's are all there
    assert {t.metadata.get("run_id") for t in saver.list(CONFIG)} == {kept}
    assert (
        saver.get_tuple({"configurable": {**CONFIG["configurable"], "checkpoint_id": cid}}) is None
    )
    # and the secret's checkpoints are erased from the old generation, and both chains verify
    assert "4111-1111" not in _rows(saver, "t1")
    assert verify_thread(saver.backend, "t1").ok
    assert verify_thread(saver.backend, "t1~1").ok


def test_a_rewrite_cut_short_leaves_the_thread_as_it_was(saver: DurableGraphSaver) -> None:
    # Given a prune that staged a generation and crashed before switching to it
    app = review_app(saver)
    run_turns(app, "t1", turns=2)
    state = app.get_state(CONFIG)
    stage(saver.backend.checkpoints, "t1", "2026-11-30T00:00:00Z")

    # Then the thread reads as before, in a fresh saver too
    assert review_app(DurableGraphSaver(saver.backend)).get_state(CONFIG).values == state.values

    # When the prune runs again
    saver.prune(["t1"])

    # Then it completes: one checkpoint, in generation 2 (the abandoned stage is erased)
    assert len(list(saver.list(CONFIG))) == 1
    manifest, _ = read(saver.backend.checkpoints, "t1")
    assert manifest.generation == 2 and manifest.staged is None
    assert sorted(e.generation for e in manifest.erased) == [0, 1]
    assert app.get_state(CONFIG).values == state.values
    assert verify_thread(saver.backend, "t1~2").ok
