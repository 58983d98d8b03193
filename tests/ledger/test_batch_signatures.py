"""Heads a group commit settles are signed together: one signature over the root of their
statements' tree, each `sig#<step>` record with its own path (`signing.batch_signatures`,
`head_batches.py`). Each head still verifies alone, from its own record, in the store and in
a bundle; a record altered, given another head's path or another batch's signature does not;
a head signed alone keeps the record it always had; a signer that fails on the batch leaves
each head to be signed alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.approval_waves import run_wave
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.clock import ManualClock
from durable_graph.runtime import CompiledGraph
from durable_graph.signing import KEY_FILE, FileSigner, PublicKey
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph

THREADS = 5  # an odd batch: its tree carries a node up unpaired


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    store = local_backend(tmp_path / "home", clock=ManualClock())
    try:
        yield store
    finally:
        store.close()


def run_waves(app: CompiledGraph, ids: list[str]) -> None:
    """The approval flow with every thread in flight (`bench.approval_waves`), through a
    worker with a pool as large as the wave."""
    run_wave(app, app.worker(concurrency=len(ids)), ids)


def signature(backend: Backend, tid: str, step: int) -> dict[str, Any]:
    record = backend.checkpoints.get_record(tid, f"sig#{step}")
    assert record is not None, (tid, step)
    return dict(record.value)


def replace_signature(backend: Backend, tid: str, step: int, value: dict[str, Any]) -> None:
    """What someone with write access to the store (not to the key) can do to a record."""
    record = backend.checkpoints.get_record(tid, f"sig#{step}")
    assert record is not None
    backend.checkpoints.put_record(tid, f"sig#{step}", value, expected_version=record.version)


def signature_problems(backend: Backend, tid: str) -> list[dict[str, object]]:
    return [p for p in verify_thread(backend, tid).problems if p["check"] == "signature"]


def test_a_group_commit_signs_its_heads_once_and_each_verifies_alone(backend: Backend) -> None:
    """Given 5 approval threads through two group commits, then each wave's heads (step 1
    suspended, step 3 completed) share one signature, each record names its own path, and
    every thread verifies in the store and as a bundle with the heads signed; a thread run
    alone keeps records without a batch."""
    app = email_graph.with_backend(backend)
    ids = [f"t-{i}" for i in range(THREADS)]
    run_waves(app, ids)
    app.invoke({"user_prompt": "pay alone"}, thread_id="alone")
    app.resume("alone", values={"approved": True}, as_node="human_review")

    for step in (1, 3):
        wave = [signature(backend, tid, step) for tid in ids]
        assert len({s["signature"] for s in wave}) == 1
        paths = [tuple(map(tuple, s["batch"]["path"])) for s in wave]
        assert len(set(paths)) == THREADS and all(1 <= len(p) <= 3 for p in paths)
    assert signature(backend, "t-0", 1)["signature"] != signature(backend, "t-0", 3)["signature"]
    for tid in [*ids, "alone"]:
        report = verify_thread(backend, tid)
        assert report.ok and report.signed_steps == [1, 3], (tid, report.problems)
        bundled = verify_bundle(build_bundle(backend, tid))
        assert bundled.ok and bundled.signed_steps == [1, 3], tid
    assert all("batch" not in signature(backend, "alone", step) for step in (1, 3))


def test_an_altered_or_borrowed_batch_signature_fails_for_its_thread_alone(
    backend: Backend,
) -> None:
    """Given the two waves signed, when one thread's record is altered (another head hash,
    a sibling of its path changed), given a neighbour's path, or given the other wave's
    signature, then that thread fails `signature` at that step and the others verify."""
    app = email_graph.with_backend(backend)
    ids = [f"t-{i}" for i in range(THREADS)]
    run_waves(app, ids)
    original = signature(backend, "t-1", 1)
    path = original["batch"]["path"]
    sibling = path[0][1]
    forgeries: list[dict[str, Any]] = [
        {**original, "head_hash": "0" * 64},
        {**original, "batch": {"path": [[path[0][0], sibling[::-1]], *path[1:]]}},
        {**original, "batch": signature(backend, "t-2", 1)["batch"]},
        {**original, "signature": signature(backend, "t-1", 3)["signature"]},
        {k: v for k, v in original.items() if k != "batch"},
    ]
    for forged in forgeries:
        replace_signature(backend, "t-1", 1, forged)
        problems = signature_problems(backend, "t-1")
        assert [p["step"] for p in problems] == [1], forged
        assert all(verify_thread(backend, tid).ok for tid in ids if tid != "t-1")
    replace_signature(backend, "t-1", 1, original)
    assert verify_thread(backend, "t-1").ok


class BatchRefusingSigner:
    """A ledger key that signs one message at a time and refuses the first batch root it is
    asked for (a KMS outage at that moment)."""

    def __init__(self, path: Path) -> None:
        self.key = FileSigner(path)
        self.refused = 0

    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def sign(self, message: bytes) -> bytes:
        if b'"heads_root"' in message and not self.refused:
            self.refused += 1
            raise ConnectionError("the key service is unreachable")
        return self.key.sign(message)


def test_a_batch_the_signer_refuses_leaves_each_head_signed_alone(tmp_path: Path) -> None:
    """Given a signer that fails on the first batch, then that wave's heads are signed one
    by one (records without a batch), the next wave's together, and every thread verifies."""
    backend = local_backend(tmp_path / "home", clock=ManualClock())
    signer = BatchRefusingSigner(tmp_path / "home" / KEY_FILE)  # the store's own key
    backend.signer = signer
    try:
        ids = [f"t-{i}" for i in range(THREADS)]
        run_waves(email_graph.with_backend(backend), ids)
        assert signer.refused == 1
        assert all("batch" not in signature(backend, tid, 1) for tid in ids)
        assert all("batch" in signature(backend, tid, 3) for tid in ids)
        assert all(verify_thread(backend, tid).ok for tid in ids)
    finally:
        backend.close()
