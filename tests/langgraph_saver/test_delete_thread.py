"""`delete_thread` on an append-only ledger: the values are erased (the thread's data key is
destroyed), the chain stays and still verifies, ending in a signed deletion record; the thread id
can be used again, as a new generation."""

from __future__ import annotations

import json

from langchain_core.runnables import RunnableConfig

from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.langgraph_saver.manifest import erase, read
from durable_graph.verification import verify_thread
from tests.langgraph_saver.apps import review_app, run_turns

CONFIG: RunnableConfig = {"configurable": {"thread_id": "t1"}}


def test_delete_erases_values_and_keeps_a_verifiable_chain(saver: DurableGraphSaver) -> None:
    # Given a thread with a secret in its state
    app = review_app(saver)
    app.invoke({"notes": ["card 4111-1111-1111-1111"], "drafts": 0}, CONFIG)
    store = saver.backend.checkpoints
    before = len(store.ledger("t1"))

    # When LangGraph deletes it
    saver.delete_thread("t1")

    # Then LangGraph sees nothing
    assert saver.get_tuple(CONFIG) is None and list(saver.list(CONFIG)) == []
    # and the chain is all there, one signed deletion record longer, and verifies
    records = store.ledger("t1")
    assert len(records) == before + 1
    last = records[-1]
    assert last.status == "completed" and "$deleted" in last.changes
    report = verify_thread(saver.backend, "t1")
    assert report.ok, report.reason
    assert last.step in report.signed_steps
    # and the key is gone: no record holds the value in the clear, and nothing can decrypt it
    manifest, _ = read(store, "t1")
    assert manifest.key is None and manifest.erased[0].namespaces == [""]
    rows = json.dumps([r.to_stored_json() for r in records])
    assert "4111-1111" not in rows
    # and the ciphertexts themselves are gone too: every value but the deletion note erased
    # (salt and value destroyed, digest kept), which verify reports, by a signed erasure record
    stored = store.inner.list_checkpoints("t1", newest_first=False)
    kept = {n for r in stored for n, c in r.changes.items() if c.v is not None or c.ref}
    assert kept == {"$deleted"}
    erased = {name for names in report.erased.values() for name in names}
    assert {"notes", "$checkpoint", "$write_values"} <= erased and "$deleted" not in erased


def test_a_deleted_thread_id_starts_a_new_generation(saver: DurableGraphSaver) -> None:
    # Given a deleted thread
    run_turns(review_app(saver), "t1", turns=1)
    saver.delete_thread("t1")

    # When the app uses the same thread id again
    out = run_turns(review_app(saver), "t1", turns=1)

    # Then it starts afresh in ledger thread "t1~1", and both chains verify
    assert out[-1]["notes"] == ["turn 0", out[-1]["notes"][1], "decision: ok 0"]
    assert saver.backend.checkpoints.ledger("t1~1")
    assert verify_thread(saver.backend, "t1").ok
    assert verify_thread(saver.backend, "t1~1").ok
    assert len(list(saver.list(CONFIG))) == 4


def test_a_second_saver_sees_a_deletion_made_by_the_first(saver: DurableGraphSaver) -> None:
    # Given two savers on one store (two processes), both having read the thread
    other = DurableGraphSaver(saver.backend)
    run_turns(review_app(saver), "t1", turns=1)
    assert other.get_tuple(CONFIG) is not None

    # When one deletes it
    saver.delete_thread("t1")

    # Then the other sees it gone too, and writes a new generation when used again
    assert other.get_tuple(CONFIG) is None
    run_turns(review_app(other), "t1", turns=1)
    assert saver.get_tuple(CONFIG) is not None
    assert verify_thread(saver.backend, "t1~1").ok


def test_a_deletion_cut_short_is_completed_by_the_next_call(saver: DurableGraphSaver) -> None:
    # Given a deletion that destroyed the key but crashed before its deletion record
    run_turns(review_app(saver), "t1", turns=1)
    store = saver.backend.checkpoints
    erase(store, "t1", "2026-11-30T00:00:00Z")
    assert "$deleted" not in store.ledger("t1")[-1].changes

    # When delete_thread is called again
    saver.delete_thread("t1")

    # Then the erased generation ends in a signed deletion record, and verifies
    last = store.ledger("t1")[-1]
    assert "$deleted" in last.changes and last.status == "completed"
    assert verify_thread(saver.backend, "t1").ok
