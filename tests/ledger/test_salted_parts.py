"""Salted parts (`salted_parts.py`) and the stores written before them: a thread written by the
previous release (`tests/fixtures/unsalted_parts_store`, made by
`tests/fixtures/unsalted_parts_generate.py`), whose records hash task arguments, the interrupt
payload, resume values, io responses and the error message as stored, reads and verifies as it
is; the steps it takes now are salted beside them, the chain verifies across both, and erasing
every part attests only the old steps (their hashes change) while the new ones keep theirs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.row_bodies import decode_body
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_parts import PARTS
from durable_graph.errors import ThreadFailed
from durable_graph.verification import verify_thread
from tests.ledger.unsalted_parts import MARK, graph

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "unsalted_parts_store"
THREAD = "parts-v2"
DPO = Actor(kind="cli", id="dpo@example.com")


def ledger_now(backend: Backend) -> list[Checkpoint]:
    return backend.checkpoints.ledger(THREAD)


def salted(row: Checkpoint) -> bool:
    """Whether any part of `row` carries a salt."""
    return bool(
        row.resume_s
        or any(t.s for t in row.next)
        or any(r.s for r in row.io)
        or (row.interrupt is not None and row.interrupt.s)
        or (row.error is not None and row.error.s)
    )


def test_a_thread_written_before_salted_parts_verifies_continues_and_is_erased(
    tmp_path: Path,
) -> None:
    """Given the store written by the release before salted parts (a failed thread with task
    arguments, an interrupt payload, a resume value, io responses and an error message, each
    hashed as stored)
    Then it verifies as it is and no part of it has a salt
    When the thread is resumed (it fails again: new steps)
    Then the new steps carry salts, and the chain verifies across both kinds of step
    When every part is erased
    Then the erasure record attests the old steps with erased parts (their hash bodies
    changed) and none of the new ones (their parts were hashed by salted digest), the thread
    verifies and names the erased parts, and no stored row names the person."""
    home = tmp_path / "store"
    shutil.copytree(FIXTURE, home)
    backend = local_backend(home, clock=ManualClock())
    app = graph.with_backend(backend, clock=ManualClock())
    old = backend.checkpoints.ledger(THREAD)
    assert old[-1].status == "failed" and not any(salted(row) for row in old)
    assert {"arg", "interrupt", "resume", "io", "error"} <= {
        part
        for row in old
        for part, there in (
            ("arg", any(t.arg for t in row.next)),
            ("interrupt", row.interrupt is not None and row.interrupt.payload),
            ("resume", bool(row.resume)),
            ("io", any(r.response for r in row.io)),
            ("error", row.error is not None),
        )
        if there
    }
    report = verify_thread(backend, THREAD)
    assert report.ok, report.reason

    with pytest.raises(ThreadFailed):
        app.resume(THREAD)

    ledger = backend.checkpoints.ledger(THREAD)
    new = ledger[len(old) :]
    assert new and all(salted(row) for row in new if row.error is not None)
    assert any(salted(row) for row in new)
    report = verify_thread(backend, THREAD)
    assert report.ok, report.reason
    hashes = {row.step: row.hash for row in ledger}

    record = erase(backend, THREAD, parts=list(PARTS), reason="GDPR #77", actor=DPO)

    assert record is not None
    attested = {int(step) for step in record.attested}
    assert attested and attested <= {row.step for row in old}
    erased_new = {int(s) for s in record.parts} & {row.step for row in new}
    assert erased_new, "a new step's error message was erased too"
    after = {row.step: row.with_io_restored().compute_hash() for row in ledger_now(backend)}
    assert all(after[row.step] == hashes[row.step] for row in new), "salted: hashes kept"
    assert all(after[step] != hashes[step] for step in attested), "unsalted: attested"
    report = verify_thread(backend, THREAD)
    assert report.ok, report.reason
    assert {"arg", "interrupt", "resume", "error"} <= {
        name.split(":")[0] for names in report.erased.values() for name in names
    }
    inner = backend.checkpoints.inner
    with inner.db.read() as conn:  # type: ignore[attr-defined]
        bodies = [decode_body(b) for (b,) in conn.execute("SELECT body FROM checkpoints")]
    text = "".join(b.decode() if isinstance(b, bytes) else b for b in bodies)
    assert MARK not in text
    backend.close()
