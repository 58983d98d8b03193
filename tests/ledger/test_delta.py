"""DeltaStore: full logical checkpoints in, full logical checkpoints out, deltas in storage."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.delta import DELTA, DeltaStore, same
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.memory import MemoryCheckpointStore
from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, ParentRef
from durable_graph.errors import StepConflict
from durable_graph.runtime import CompiledGraph
from durable_graph.verification import verify_thread
from tests.ledger.conftest import THREAD
from tests.ledger.graphs import graph

GRAPH = GraphRef(name="tests:delta", version="v1")


def chain(thread_id: str, states: list[dict[str, Any]]) -> list[Checkpoint]:
    """Sealed, linked checkpoints with the given values, as the engine writes them."""
    out: list[Checkpoint] = []
    for step, values in enumerate(states):
        previous = out[-1] if out else None
        out.append(
            Checkpoint(
                thread_id=thread_id,
                step=step,
                parent=(
                    ParentRef(thread_id=thread_id, step=previous.step, hash=previous.hash)
                    if previous
                    else None
                ),
                source="input" if step == 0 else "node",
                values=values,
                status="running",
                graph=GRAPH,
                created_at="2026-01-01T00:00:00.000000Z",
                actor=Actor(kind="system", id="test"),
                prev_hash=previous.hash if previous else "0" * 64,
            ).sealed()
        )
    return out


def random_states(rng: random.Random, steps: int) -> list[dict[str, Any]]:
    """States that grow, change, shrink and switch types: every delta path, in random order."""
    state: dict[str, Any] = {"log": [], "meta": {}, "n": 0, "text": "x" * 3000}
    states = []
    for _ in range(steps):
        state = json.loads(json.dumps(state))
        move = rng.randrange(8)
        if move <= 2:
            state["log"] = state["log"] + [f"entry {rng.random()} " * 20]
        elif move == 3:
            state["meta"] = {**state.get("meta", {}), f"k{rng.randrange(5)}": rng.random()}
        elif move == 4:
            state["n"] = rng.choice([1, 1.0, True, "1", None, [1], {"1": 1}])
        elif move == 5:
            state["log"] = state["log"][1:]  # not an append: stored whole
        elif move == 6:
            state.pop("meta", None) if rng.random() < 0.5 else state.setdefault("meta", {})
        else:
            state["text"] = state["text"][::-1] + "y"
        states.append(state)
    return states


def test_random_histories_read_back_exactly_from_cache_and_from_cold_storage(
    tmp_path: Path,
) -> None:
    """Given 120 random steps (appends, merges, type changes 1/1.0/True, removals), when
    written through DeltaStore on SQLite and read back by the writer (warm cache) and by a new
    process-like store (cold), then every record equals the original and keeps its hash."""
    records = chain("r", random_states(random.Random(7), 120))
    writer = DeltaStore(SqliteCheckpointStore(Database(tmp_path / "a.db")), snapshot_every=8)
    for record in records:
        writer.append_checkpoint(record)
        assert writer.get_checkpoint("r", record.step) == record
    cold = DeltaStore(SqliteCheckpointStore(Database(tmp_path / "a.db")), snapshot_every=8)
    assert cold.list_checkpoints("r", newest_first=False) == records
    assert [cold.get_checkpoint("r", s) for s in (119, 0, 57, 3)] == [
        records[119],
        records[0],
        records[57],
        records[3],
    ]
    assert cold.list_checkpoints("r", before_step=60, limit=7) == records[53:60][::-1]
    assert all(r.compute_hash() == r.hash for r in cold.list_checkpoints("r"))
    stored = [
        json.loads(b)
        for (b,) in sqlite3.connect(tmp_path / "a.db").execute(
            "SELECT body FROM checkpoints ORDER BY step"
        )
    ]
    assert sum(DELTA in s["values"] for s in stored) > 100  # most rows are deltas


def test_appends_are_stored_as_what_each_step_added(tmp_path: Path) -> None:
    """Given a list that grows by 1 KB per step, then each stored row holds only the new item
    (plus metadata), not the whole list, and a cold reader rebuilds the full list."""
    states = [{"messages": [f"{i:04d}" + "m" * 1020 for i in range(n)]} for n in range(1, 41)]
    records = chain("grow", states)
    store = DeltaStore(MemoryCheckpointStore())
    for record in records:
        store.append_checkpoint(record)
    stored = store.inner.list_checkpoints("grow", newest_first=False)
    assert stored[39].values == {
        DELTA: {"add": {"messages": [states[39]["messages"][-1]]}, "from": 0, "parent": "previous"}
    }
    assert stored[39].parent is None  # derivable, not stored again
    assert DeltaStore(store.inner).head_checkpoint("grow") == records[39]


def test_snapshots_bound_the_chain_a_reader_needs(tmp_path: Path) -> None:
    """Given small fields that change every step, then a delta row's `from` never points more
    than `snapshot_every` steps back: reading one past state reads a bounded number of rows."""
    states = [{"n": i, "pad": "p" * 2100, "big": ["b" * 100] * 5} for i in range(50)]
    store = DeltaStore(MemoryCheckpointStore(), snapshot_every=10)
    for record in chain("snap", states):
        store.append_checkpoint(record)
    stored = store.inner.list_checkpoints("snap", newest_first=False)
    starts = [r.values[DELTA]["from"] for r in stored if DELTA in r.values]
    assert starts and all(
        row - start <= 10 for row, start in zip(range(50)[-len(starts) :], starts, strict=True)
    )


def test_a_tampered_delta_changes_the_rebuilt_record_and_fails_its_hash(tmp_path: Path) -> None:
    """Given a stored delta edited in the SQLite file, when a fresh store rebuilds the chain,
    then that step (and only from there) no longer matches its hash."""
    states = [{"messages": [f"m{i}" * 300 for i in range(n)]} for n in range(1, 10)]
    db_path = tmp_path / "t.db"
    store = DeltaStore(SqliteCheckpointStore(Database(db_path)))
    for record in chain("t", states):
        store.append_checkpoint(record)
    with sqlite3.connect(db_path) as conn:
        (body,) = conn.execute("SELECT body FROM checkpoints WHERE step=5").fetchone()
        assert DELTA in body
        conn.execute("UPDATE checkpoints SET body=? WHERE step=5", (body.replace("m5", "M5", 1),))
    rebuilt = DeltaStore(SqliteCheckpointStore(Database(db_path))).list_checkpoints(
        "t", newest_first=False
    )
    assert [r.compute_hash() == r.hash for r in rebuilt] == [True] * 5 + [False] * 4


def test_conflict_returns_the_winner_in_full() -> None:
    """Given step 2 committed as a delta, when another writer appends step 2, then StepConflict
    carries the full logical winner, as the engine needs to re-send its successors."""
    records = chain("c", [{"log": ["a" * 3000] * n} for n in (1, 2, 3)])
    store = DeltaStore(MemoryCheckpointStore())
    for record in records:
        store.append_checkpoint(record)
    loser = chain("c", [{"log": ["a" * 3000] * n} for n in (1, 2, 4)])[2]
    try:
        store.append_checkpoint(loser)
    except StepConflict as conflict:
        assert conflict.existing == records[2]
    else:
        raise AssertionError("the second writer of step 2 must lose")


def test_same_tells_json_types_apart() -> None:
    assert same([1, {"a": "x"}], [1, {"a": "x"}])
    assert not same(1, 1.0) and not same(1, True) and not same([1], [True]) and not same(0, None)


def test_chat_of_200_turns_stores_under_twice_the_raw_data(tmp_path: Path) -> None:
    """Given the embedded backend and a thread appending a 1 KB message for 200 steps, then the
    checkpoint rows total at most 2x the 200 KB of messages, and the chain verifies."""
    import operator
    from typing import Annotated

    from pydantic import BaseModel, Field

    from durable_graph import END, START, StateGraph

    class Talk(BaseModel):
        messages: Annotated[list[str], operator.add] = Field(default_factory=list)
        turns: int = 0

    def talk(state: Talk) -> dict[str, object]:
        return {"messages": [f"{state.turns:05d}" + "w" * 1019], "turns": state.turns + 1}

    builder = StateGraph(Talk)
    builder.add_node("talk", talk)
    builder.add_edge(START, "talk")
    builder.add_conditional_edges("talk", lambda s: END if s.turns >= 200 else "talk")
    backend: Backend = local_backend(tmp_path / "h")
    builder.compile(name="talk").with_backend(backend).invoke({}, thread_id="talk-1")
    with sqlite3.connect(tmp_path / "h" / "state.db") as conn:
        rows, stored = conn.execute(
            "SELECT COUNT(*), SUM(LENGTH(CAST(body AS BLOB))) FROM checkpoints"
        ).fetchone()
    raw = 200 * 1024
    assert rows == 201 and stored <= 2 * raw, stored
    assert verify_thread(backend, "talk-1").ok
    backend.close()


def test_engine_threads_read_back_the_same_through_a_cold_store(tmp_path: Path) -> None:
    """Given the chat graph run on the embedded backend, when another store instance (another
    process's view) reads the history, then it is record-for-record what the writer returned."""
    backend = local_backend(tmp_path / "h")
    app = graph.with_backend(backend)
    app.invoke({"attachment": "A" * 9000}, thread_id=THREAD)
    warm = backend.checkpoints.list_checkpoints(THREAD)
    other = local_backend(tmp_path / "h")
    assert other.checkpoints.list_checkpoints(THREAD) == warm
    assert other.checkpoints.head_checkpoint(THREAD) == warm[0]
    backend.close()
    other.close()


def test_a_recorded_reply_kept_in_the_state_is_stored_once(chat: CompiledGraph, home: Path) -> None:
    """Given chat turns whose recorded LLM reply is also appended to `messages`, then the stored
    row keeps the reply once (io points into the delta), and reading restores the io exactly."""
    inner = chat.backend.checkpoints
    assert isinstance(inner, DeltaStore)
    stored = inner.inner.get_checkpoint(THREAD, 4)
    assert stored is not None and DELTA in stored.values
    assert stored.io[0].response is None and stored.values[DELTA]["io"] == {
        "0": ["add", "messages", 0]
    }
    cold = local_backend(home)
    full = cold.checkpoints.get_checkpoint(THREAD, 4)
    cold.close()
    assert full is not None and full.io[0].response == full.values["messages"][-1]
    assert full.compute_hash() == full.hash
