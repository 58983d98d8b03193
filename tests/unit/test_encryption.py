"""Encryption at rest on the embedded store (`encryption.py`, `keys.py`): how it is turned on
(store URI, then sticky), what a process without the key sees, a wrong key file, wrapped keys
bound to their thread, and a long thread whose snapshots and segments are sealed too. The
conformance suite (`tests/conformance/test_encryption.py`) runs the core cases on every store."""

from __future__ import annotations

import base64
import contextlib
import io
import stat
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.cli import common, main
from durable_graph.clock import ManualClock
from durable_graph.encryption import SEALED_SUFFIX
from durable_graph.errors import DataKeyUnavailable, ThreadFailed
from durable_graph.keys import KEK_FILE, LocalKeyFile
from durable_graph.store_uri import InvalidStoreURI, open_store
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption_parts import MARK
from tests.conformance.test_encryption_parts import graph as parts_graph
from tests.conformance.test_erasure import EMAIL, run_case
from tests.ledger.graphs import graph as chat_graph


def test_the_store_uri_turns_encryption_on_and_it_stays_on(tmp_path: Path) -> None:
    """Given a new embedded store opened with ?encrypt=on
    When it is opened again without the option
    Then it is still encrypted (the key file exists, mode 0600), and a bad value is refused
    by name."""
    folder = tmp_path / "store"
    first = open_store(f"sqlite://{folder}?encrypt=on")
    run_case(first, ManualClock(), "t1")
    first.close()
    kek = folder / KEK_FILE
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600

    again = open_store(f"sqlite://{folder}")
    try:
        assert again.checkpoints.keys is not None
        assert verify_thread(again, "t1").ok
    finally:
        again.close()
    with pytest.raises(InvalidStoreURI, match="encrypt: expected on or off"):
        open_store(f"sqlite://{folder}?encrypt=maybe")


def test_without_the_key_reads_fail_clearly_and_verify_checks_the_skeleton(
    tmp_path: Path,
) -> None:
    """Given an encrypted thread
    When the store is opened without its key file (?encrypt=off)
    Then reading a value is a `DataKeyUnavailable` that says why, and verify passes (links,
    hashes, state roots, stored bytes) while saying how many values it could not check."""
    folder = tmp_path / "store"
    backend = local_backend(folder, encrypt=True)
    app = run_case(backend, ManualClock(), "t1")
    backend.close()

    keyless = open_store(f"sqlite://{folder}?encrypt=off")
    try:
        head = app.with_backend(keyless).get_state("t1")  # the head row: no value read yet
        assert head.status == "completed"
        with pytest.raises(DataKeyUnavailable, match="without the key-encryption key"):
            head.values  # noqa: B018 - reading the state is what must fail
        report = verify_thread(keyless, "t1")
        assert report.ok, report.reason
        assert any("not checked" in note for note in report.notes), report.notes
    finally:
        keyless.close()


def test_a_wrong_key_file_or_another_threads_key_does_not_unwrap(tmp_path: Path) -> None:
    """Given an encrypted thread
    When its key file is replaced, or its wrapped key is presented for another thread
    Then neither unwraps: a clear `DataKeyUnavailable`, nothing read."""
    folder = tmp_path / "store"
    backend = local_backend(folder, encrypt=True)
    run_case(backend, ManualClock(), "t1")
    record = backend.checkpoints.get_record("t1", "key#data")
    backend.close()
    assert record is not None
    wrapped = base64.b64decode(record.value["wrapped"])
    kek = LocalKeyFile(folder / KEK_FILE)
    assert len(kek.unwrap("t1", wrapped)) == 32
    with pytest.raises(DataKeyUnavailable, match="does not unwrap"):
        kek.unwrap("t2", wrapped)

    (folder / KEK_FILE).write_text(bytes(32).hex())
    reopened = local_backend(folder)
    try:
        with pytest.raises(DataKeyUnavailable, match="does not unwrap"):
            reopened.checkpoints.get_checkpoint("t1", 0)
    finally:
        reopened.close()


def test_a_long_thread_seals_its_snapshots_and_reads_back_cold(tmp_path: Path) -> None:
    """Given a 140-turn chat on an encrypted store (its message list grows, so the store
    writes snapshots and segments)
    Then every snapshot and segment is sealed, a cold process reads every step back exactly,
    and no file holds a message in the clear."""
    folder = tmp_path / "store"
    backend = local_backend(folder, encrypt=True)
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": 140, "note": EMAIL}, {"recursion_limit": 10_000}, thread_id="chat")
    warm = backend.checkpoints.list_checkpoints("chat", newest_first=False)
    rows = backend.checkpoints.inner.list_checkpoints("chat", newest_first=False)
    backend.close()
    snaps = [r.snap for r in rows if r.snap is not None]
    assert snaps and all(s.content_type.endswith(SEALED_SUFFIX) for s in snaps)

    cold = local_backend(folder)
    try:
        assert cold.checkpoints.head_checkpoint("chat") == warm[-1]
        message = str(warm[-1].values["messages"][-1])
        files = [p for p in folder.rglob("*") if p.is_file() and "keys" not in p.parts]
        for secret in (EMAIL, message):
            assert not any(secret.encode() in p.read_bytes() for p in files), secret
        assert verify_thread(cold, "chat").ok
    finally:
        cold.close()


def _show_all(uri: str, thread_id: str, steps: int) -> str:
    out = io.StringIO()
    for step in range(steps):
        common.backend.cache_clear()
        with contextlib.redirect_stdout(out):
            assert main(["--store", uri, "show", thread_id, "--step", str(step)]) == 0
    return out.getvalue()


def test_show_prints_the_sealed_parts_with_the_key_and_says_when_it_is_destroyed(
    tmp_path: Path,
) -> None:
    """Given an encrypted thread with a `Send` argument, an interrupt payload, a resume value
    and an error message, all sealed
    When `show` prints its steps, then again after the whole thread is erased
    Then each part is printed opened, and after erasure as "erased at step N by X"."""
    uri = f"sqlite://{tmp_path / 'store'}?encrypt=on"
    backend = open_store(uri)
    app = parts_graph.with_backend(backend)
    app.invoke({"docs": ["a"]}, thread_id="all")
    with pytest.raises(ThreadFailed):
        app.resume("all", resume_value=f"{MARK} resume")
    steps = app.get_state("all").checkpoint.step + 1
    backend.close()

    shown = _show_all(uri, "all", steps)
    assert f"arg    1:plan>work:0: {{'doc': '{MARK} a'}}" in shown
    assert f"waits  ask (during): {{'question': '{MARK} approve?'}}" in shown
    assert f"resume 2:ask: '{MARK} resume'" in shown
    assert f"error  ValueError in 'explode': {MARK} exploded" in shown

    common.backend.cache_clear()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--store", uri, "erase", "all", "--reason", "GDPR", "--actor", "dpo"]) == 0
    erased = _show_all(uri, "all", steps)
    assert MARK not in erased
    assert "arg    1:plan>work:0: erased at step 1 by cli:dpo" in erased
    assert "waits  ask (during): erased at step 3 by cli:dpo" in erased
    assert "resume 2:ask: erased at step 4 by cli:dpo" in erased
    assert "(the message is erased at step 6 by cli:dpo)" in erased
