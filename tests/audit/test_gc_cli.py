"""`durable-graph gc`, the same on every store: memory, SQLite and DynamoDB + S3 (moto).

Given the chat thread and two objects no record names (put the way a step that never committed
puts its chunks), a dry run names exactly those two and deletes nothing, the run deletes them
and says how many bytes, the thread still verifies and exports, and bad input exits 2.
"""

from __future__ import annotations

import time
from pathlib import Path

from durable_graph.bundle import load_bundle, verify_bundle
from durable_graph.canonical import canonical_bytes
from durable_graph.payloads import CHUNK_CONTENT_TYPE
from tests.audit.conftest import THREAD, Store


def test_gc_deletes_what_no_thread_names_and_the_thread_verifies(
    chat: Store, tmp_path: Path
) -> None:
    strays = [
        chat.backend.payloads.put(
            canonical_bytes({"s": f"{n}" * 32, "v": "never committed " * 600}), CHUNK_CONTENT_TYPE
        )
        for n in (1, 2)
    ]
    time.sleep(2.1)  # older than the one-second grace given below

    recent = chat.json("gc", "--dry-run")  # the default grace: an hour
    assert recent["deleted"] == 0 and recent["recent"] + recent["kept"] == 2
    dry = chat.json("gc", "--dry-run", "--grace", "1s")
    assert sorted(dry["doomed"]) == sorted(r.sha256 for r in strays)
    assert dry["dry_run"] is True and dry["threads"] == 1

    done = chat.run("gc", "--grace", "1s")

    assert done.code == 0, done.err
    size = sum(r.size for r in strays) / 1024
    assert f"deleted 2 unreferenced object(s) ({size:.1f} KB)" in done.out
    assert "gc: marking: 1 threads read" in done.err  # the progress line
    assert chat.json("gc", "--grace", "1s", "--quiet")["deleted"] == 0
    assert chat.json("verify", THREAD)["ok"] is True
    out = tmp_path / "bundle.json"
    assert chat.run("export", THREAD, "--out", str(out)).code == 0
    assert verify_bundle(load_bundle(out)).ok


def test_bad_gc_input_exits_2_and_deletes_nothing(chat: Store) -> None:
    stray = chat.backend.payloads.put(b"a stray object " * 100)
    time.sleep(1.1)
    for grace, why in (("soon", "not a duration"), ("0s", "longer than zero"), ("-5m", "not a")):
        bad = chat.run("gc", f"--grace={grace}")
        assert bad.code == 2 and "--grace" in bad.err and why in bad.err, bad.err
    assert chat.backend.payloads.get(stray)
