"""Ledger key and head signatures."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.runtime import CompiledGraph
from durable_graph.signing import (
    KEY_FILE,
    Ed25519Signer,
    FileSigner,
    HeadSignature,
    key_of_pem,
    make_signature,
    sign_head,
    verify_signature,
)
from tests.ledger.conftest import THREAD


def test_key_file_is_created_once_private_and_named_by_its_fingerprint(tmp_path: Path) -> None:
    """Given no key yet, when two signers of the same path are used, then one 0600 PEM file
    exists, both sign with it, and the key id is the fingerprint of its public key."""
    path = tmp_path / KEY_FILE
    first, second = FileSigner(path), FileSigner(path)
    assert first.public_key() == second.public_key()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    public = first.public_key()
    assert key_of_pem(public.pem).key_id == public.key_id and len(public.key_id) == 32
    assert verify_signature(public, b"head", second.sign(b"head"))


def test_processes_racing_to_create_the_key_agree_on_one(tmp_path: Path) -> None:
    """Given three processes creating the key at once, then they all report one key id."""
    code = (
        "import sys; from pathlib import Path; from durable_graph.signing import FileSigner; "
        "print(FileSigner(Path(sys.argv[1])).public_key().key_id)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "k.pem")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and FileSigner(tmp_path / "k.pem").public_key().key_id in ids


def test_a_signature_does_not_verify_under_another_key_or_after_a_change(
    chat: CompiledGraph,
) -> None:
    head = chat.engine().head(THREAD)
    signer, other = Ed25519Signer.generate(), Ed25519Signer.generate()
    signature = make_signature(signer, head, "2026-01-01T00:00:00.000000Z")
    raw = __import__("base64").b64decode(signature.signature)
    assert verify_signature(signer.public_key(), signature.signed_bytes(), raw)
    assert not verify_signature(other.public_key(), signature.signed_bytes(), raw)
    changed = signature.model_copy(update={"step_count": 3})
    assert not verify_signature(signer.public_key(), changed.signed_bytes(), raw)


def test_engine_signs_heads_that_suspend_and_complete(chat: CompiledGraph) -> None:
    """Given the chat run (suspends at step 6, completes at step 8), then exactly those heads
    carry a signature naming their hash and step count, by the backend's key."""
    store = chat.backend.checkpoints
    signed = {
        step: HeadSignature.model_validate(record.value)
        for step in range(9)
        if (record := store.get_record(THREAD, f"sig#{step}")) is not None
    }
    assert sorted(signed) == [6, 8]
    head = store.head_checkpoint(THREAD)
    assert head is not None and signed[8].head_hash == head.hash and signed[8].step_count == 9
    assert signed[6].status == "suspended" and signed[8].status == "completed"
    assert chat.backend.signer is not None
    assert signed[8].key_id == chat.backend.signer.public_key().key_id


def test_signing_again_keeps_the_first_signature(backend: Backend, chat: CompiledGraph) -> None:
    """Given a signed head, when it is signed again (a redelivery, an on-demand `sign`), then
    the stored signature is unchanged: signatures are never replaced."""
    assert backend.signer is not None
    head = chat.engine().head(THREAD)
    before = backend.checkpoints.get_record(THREAD, "sig#8")
    clock = ManualClock()
    clock.advance(3600)
    again = sign_head(backend.checkpoints, backend.signer, head, clock)
    after = backend.checkpoints.get_record(THREAD, "sig#8")
    assert before == after and again.model_dump() == (before.value if before else None)
