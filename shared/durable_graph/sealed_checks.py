"""What `verify` checks of sealed values (encryption at rest, `encryption.py`), with the key or
without it. The ledger's digests are over plaintext and its hashes over `op` and `d` (and the
sealed form of io responses), so the chain skeleton verifies the same with or without the key:

- **with the thread's data key**: every sealed value and chunk is opened (AES-GCM: an altered
  box does not open) and its plaintext checked against its digest `d`, and every sealed io
  response is opened; a failure is a `state` problem at its step;
- **without it** (a verifier not allowed to unwrap it, an exported bundle): sealed chunks are
  still checked as stored bytes against their addresses (`payload`), but a sealed value cannot
  be compared with its digest: the report says how many were not checked;
- **after the key was destroyed** (erasure by key destruction), or with no key record at all: a
  sealed value is unreadable, which `verify` accepts only where a signed erasure record names
  its step and field, and reports as erased.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from durable_graph.canonical import sha256_hex
from durable_graph.checkpoint import Change, Checkpoint
from durable_graph.encryption import (
    SealBroken,
    ThreadCipher,
    is_sealed,
    is_sealed_io,
    open_change,
    open_io,
)
from durable_graph.errors import PayloadCorrupted
from durable_graph.payloads import collect_refs
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_payloads import open_sealed

KeyStateName = Literal["none", "live", "destroyed", "locked"]
Bad = Callable[[int, str, str], None]


class SealedChecks:
    """Checks of one thread's sealed values during one `verify_chain`."""

    def __init__(
        self,
        cipher: ThreadCipher | None,
        key_state: KeyStateName | None,
        covered: Callable[[int, str], bool],
        erased: Callable[[int, str], None],
    ) -> None:
        self.cipher = cipher
        self.key_state = key_state
        self.covered = covered  # an erasure record names (step, field)
        self.erased = erased  # report (step, field) as erased, failing `erasure` if not named
        self.unchecked = 0
        self.sealed = 0

    def change(
        self,
        record: Checkpoint,
        name: str,
        change: Change,
        payloads: PayloadStore | None,
        bad: Bad,
    ) -> None:
        """A change kept sealed inline (`e`) or as a sealed chunk (`ref`)."""
        self.sealed += 1
        if self.cipher is None:
            self._without_key(record.step, name)
            return
        try:
            if change.e is not None:
                chunk = open_change(change, self.cipher)
            elif change.ref is not None and payloads is not None:
                chunk = open_sealed(self.cipher, change.ref, payloads.get(change.ref))
            else:
                return
        except SealBroken:
            bad(record.step, "state", f"the sealed value of {name!r} does not open (altered)")
            return
        except PayloadCorrupted as exc:
            bad(record.step, "payload", f"the chunk of {name!r}: {exc}")
            return
        if sha256_hex(chunk) != change.d:
            bad(record.step, "state", f"the value of {name!r} does not match its digest")

    def _without_key(self, step: int, name: str) -> None:
        if self.covered(step, name) or self.key_state in ("destroyed", "none"):
            self.erased(step, name)  # unreadable: fine only where an erasure record says so
        else:
            self.unchecked += 1

    def io(self, record: Checkpoint, payloads: PayloadStore | None, bad: Bad) -> None:
        """Sealed io responses open with the key, and the payloads they name are present."""
        if self.cipher is None:
            return
        for entry in record.io:
            if not is_sealed_io(entry.response):
                continue
            try:
                opened: Any = open_io(entry.response, self.cipher)
            except (SealBroken, ValueError):
                bad(record.step, "state", f"the io response {entry.name!r} does not open")
                continue
            for ref in collect_refs(opened).values():
                if payloads is None:
                    continue
                try:
                    data = payloads.get(ref)
                    if is_sealed(ref):
                        open_sealed(self.cipher, ref, data)
                except PayloadCorrupted as exc:
                    bad(record.step, "payload", f"io response {entry.name!r}: {exc}")

    def note(self) -> str | None:
        if not self.unchecked:
            return None
        return (
            f"{self.unchecked} of {self.sealed} encrypted value(s) not checked against their "
            "digests: no data key here (the chain, state roots and stored bytes were checked)"
        )


__all__ = ["KeyStateName", "SealedChecks"]
