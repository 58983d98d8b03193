"""The saver on a store with encryption at rest on (`durable_graph.keys`): the one AES-GCM path
seals LangGraph's values twice (the saver's generation key, then the ledger thread's data key
wrapped by the store's key file), so the files hold nothing in the clear; reads and
`delete_thread` work as on any store."""

from __future__ import annotations

from pathlib import Path

from langchain_core.runnables import RunnableConfig

from durable_graph.backends.local import local_backend
from durable_graph.keys import DATA_KEY
from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.verification import verify_thread
from tests.langgraph_saver.apps import review_app

CONFIG: RunnableConfig = {"configurable": {"thread_id": "t1"}}
CARD = "4111-1111-1111-1111"


def test_the_saver_reads_and_deletes_on_an_encrypted_store(tmp_path: Path) -> None:
    # Given an embedded store with encryption on, and a LangGraph app that saves a card number
    backend = local_backend(tmp_path / "store", encrypt=True)
    saver = DurableGraphSaver(backend)
    app = review_app(saver)
    app.invoke({"notes": [f"card {CARD}"], "drafts": 0}, CONFIG)
    try:
        # Then LangGraph reads it back, the ledger thread has a wrapped data key, and no file
        # of the store holds the number
        got = saver.get_tuple(CONFIG)
        assert got is not None and got.checkpoint["channel_values"]["notes"][0] == f"card {CARD}"
        key = backend.checkpoints.get_record("t1", DATA_KEY)
        assert key is not None and "wrapped" in key.value
        files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
        assert files and not any(CARD.encode() in p.read_bytes() for p in files)
        assert verify_thread(backend, "t1").ok

        # When LangGraph deletes the thread, it is gone for LangGraph and still verifies
        saver.delete_thread("t1")
        assert saver.get_tuple(CONFIG) is None
        report = verify_thread(backend, "t1")
        assert report.ok, report.reason
    finally:
        backend.close()
