"""An unchanged LangGraph app on the saver: same results as on LangGraph's own in-memory saver,
and the ledger it leaves verifies, exports and verifies offline, on each store."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.verification import verify_thread
from tests.helpers import row_text
from tests.langgraph_saver.apps import review_app, run_turns


def _plain(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs without interrupt ids (random per run)."""
    return [
        {k: ([i.value for i in v] if k == "__interrupt__" else v) for k, v in out.items()}
        for out in outputs
    ]


def test_an_app_gives_the_same_results_as_on_langgraphs_saver(saver: DurableGraphSaver) -> None:
    # Given the same app on LangGraph's in-memory saver and on ours
    memory = review_app(InMemorySaver())
    expected = run_turns(memory, "t1", turns=3)

    # When it runs three turns of input, interrupt and resume on ours
    got = run_turns(review_app(saver), "t1", turns=3)

    # Then every output is the same, and so are the history and the state
    assert _plain(got) == _plain(expected)
    app = review_app(saver)
    config = {"configurable": {"thread_id": "t1"}}
    history = [s.values for s in app.get_state_history(config)]
    assert history == [s.values for s in memory.get_state_history(config)]
    assert app.get_state(config).values["notes"][-1] == "decision: ok 2"


def test_the_ledger_of_an_app_verifies_and_exports(saver: DurableGraphSaver) -> None:
    # Given three turns of the app
    run_turns(review_app(saver), "t1", turns=3)
    backend = saver.backend

    # When the thread is verified in the store and as an exported bundle
    report = verify_thread(backend, "t1")
    bundle = build_bundle(backend, "t1")
    offline = verify_bundle(
        bundle, trusted=[backend.signer.public_key()] if backend.signer else None
    )

    # Then both pass, with signatures on every checkpoint's head
    assert report.ok, report.reason
    assert offline.ok, offline.reason
    records = backend.checkpoints.ledger("t1")
    checkpoints = [r.step for r in records if "$checkpoint" in r.changes]
    assert report.signed_steps == checkpoints
    # An appending channel is stored as what was appended, not the whole list each time.
    ops = [r.changes["notes"].op for r in records if "notes" in r.changes]
    assert ops[0] == "set" and set(ops[1:]) == {"add"}


def test_a_changed_byte_is_named_by_verify(tmp_path: Path) -> None:
    # Given a thread written by the saver on the embedded store
    with DurableGraphSaver.embedded(tmp_path / "home") as saver:
        run_turns(review_app(saver), "t1", turns=1)
    # When one row is rewritten in the file with another status (a forged record)
    db = sqlite3.connect(tmp_path / "home" / "state.db")
    (stored,) = db.execute(
        "SELECT body FROM checkpoints WHERE thread_id='t1' AND step=3"
    ).fetchone()
    body = row_text(stored)
    db.execute(
        "UPDATE checkpoints SET body=? WHERE thread_id='t1' AND step=3",
        (body.replace('"status":"running"', '"status":"failed"'),),
    )
    db.commit()
    db.close()
    # Then verify names that step
    with DurableGraphSaver.embedded(tmp_path / "home") as saver:
        report = verify_thread(saver.backend, "t1")
    assert not report.ok and report.first_bad_step == 3 and report.check == "hash"


def test_async_app_on_the_saver(saver: DurableGraphSaver) -> None:
    # Given the app run through LangGraph's async API (aget_tuple, aput, aput_writes...)
    app = review_app(saver)
    config = {"configurable": {"thread_id": "async"}}

    async def turn() -> tuple[Any, Any]:
        first = await app.ainvoke({"notes": ["a"], "drafts": 0}, config)
        return first, await app.ainvoke(Command(resume="y"), config)

    first, last = asyncio.run(turn())

    # Then it suspends and resumes as the sync API does
    assert first["__interrupt__"][0].value == {"question": "approve?", "drafts": 1}
    assert last["notes"][-1] == "decision: y"
    assert verify_thread(saver.backend, "async").ok


def test_no_argument_opens_the_embedded_store_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given $DURABLE_GRAPH_HOME
    monkeypatch.setenv("DURABLE_GRAPH_HOME", str(tmp_path / "dg"))
    # When an app runs on DurableGraphSaver()
    with DurableGraphSaver() as saver:
        run_turns(review_app(saver), "t1", turns=1)
    # Then its thread is in that store
    assert (tmp_path / "dg" / "state.db").exists()
    with DurableGraphSaver.embedded(tmp_path / "dg") as again:
        assert again.get_tuple({"configurable": {"thread_id": "t1"}}) is not None


def test_a_store_uri_names_the_store(tmp_path: Path) -> None:
    # Given a store URI, as every command takes it
    uri = f"sqlite://{tmp_path / 'elsewhere'}"
    # When an app runs on DurableGraphSaver(uri)
    with DurableGraphSaver(uri) as saver:
        run_turns(review_app(saver), "t1", turns=1)
    # Then the thread is in that folder's store, and verifies there
    with DurableGraphSaver.embedded(tmp_path / "elsewhere") as again:
        assert again.get_tuple({"configurable": {"thread_id": "t1"}}) is not None
        assert verify_thread(again.backend, "t1").ok
