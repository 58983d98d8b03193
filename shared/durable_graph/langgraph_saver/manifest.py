"""The thread manifest: which generation of a LangGraph thread is live, its data key, and the
namespaces (subgraphs) written in it. One small compare-and-set record beside the chain
(`lg#manifest` of the thread's root ledger id); not part of any hash chain, because it is the one
thing `delete_thread` must be able to destroy (the key).

A rewrite (`prune`, `delete_for_runs`) writes what it keeps into a *staged* generation with a
key of its own, then switches to it in one compare-and-set that also erases the old one: a
crash midway leaves the old generation live and the stage abandoned (closed as erased by the
next rewrite or deletion).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.errors import RecordConflict
from durable_graph.langgraph_saver.cipher import new_key
from durable_graph.langgraph_saver.names import manifest_thread
from durable_graph.ports.checkpoint_store import CheckpointStore

MANIFEST_KEY = "lg#manifest"
_ATTEMPTS = 20


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int
    at: str
    namespaces: list[str]


class Staged(BaseModel):
    """A generation being written by a rewrite (`prune`, `delete_for_runs`) and not yet live."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int
    key: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int = 0
    key: str | None = None  # None: nothing written in this generation yet, or erased
    namespaces: list[str] = Field(default_factory=list)
    erased: list[Erasure] = Field(default_factory=list)
    staged: Staged | None = None

    def next_generation(self) -> int:
        """A generation number no ledger thread of this thread has used."""
        return max(self.generation, self.staged.generation if self.staged else 0) + 1

    def abandoned(self, at: str) -> list[Erasure]:
        """The erasures so far, plus a stage left by a rewrite that never switched to it
        (a crash midway): its key is dropped and its records are closed like any erased one."""
        if self.staged is None:
            return list(self.erased)
        lost = Erasure(generation=self.staged.generation, at=at, namespaces=self.namespaces)
        return [*self.erased, lost]


def read(store: CheckpointStore, thread_id: str) -> tuple[Manifest, int | None]:
    """The manifest and its version (None: never written)."""
    record = store.get_record(manifest_thread(thread_id), MANIFEST_KEY)
    if record is None:
        return Manifest(), None
    return Manifest.model_validate(record.value), record.version


def _update(
    store: CheckpointStore, thread_id: str, change: Callable[[Manifest], Manifest | None]
) -> tuple[Manifest, Manifest | None]:
    """The one compare-and-set loop over the manifest: read it, let `change` compute what it
    should become (None: nothing to write; `change` may raise to refuse), and write that iff
    nobody changed the manifest since it was read; a lost race re-reads the winner's and asks
    `change` again. Returns (the manifest as it was, the one written or None)."""
    for _ in range(_ATTEMPTS):
        current, version = read(store, thread_id)
        wanted = change(current)
        if wanted is None:
            return current, None
        try:
            # Create iff absent (version None) or replace iff nobody changed it since we read it.
            store.put_record(
                manifest_thread(thread_id),
                MANIFEST_KEY,
                wanted.model_dump(mode="json"),
                expected_version=version,
            )
        except RecordConflict:
            continue
        return current, wanted
    raise RecordConflict(f"{MANIFEST_KEY} of {thread_id!r}")


def live(store: CheckpointStore, thread_id: str, ns: str) -> Manifest:
    """The manifest of a thread about to be written in `ns`: with a key and `ns` registered,
    creating either when missing (a lost race re-reads the winner's)."""

    def change(current: Manifest) -> Manifest | None:
        if current.key is not None and ns in current.namespaces:
            return None
        return current.model_copy(
            update={
                "key": current.key or new_key(),
                "namespaces": [*current.namespaces, *([] if ns in current.namespaces else [ns])],
            }
        )

    current, written = _update(store, thread_id, change)
    return current if written is None else written


def erase(store: CheckpointStore, thread_id: str, at: str) -> Manifest | None:
    """Destroy the live generation's key (and a stage's) and start the next generation.
    Returns the manifest as it was (None: nothing to erase)."""

    def change(current: Manifest) -> Manifest | None:
        if current.key is None and not current.namespaces and current.staged is None:
            return None
        erased = Erasure(generation=current.generation, at=at, namespaces=current.namespaces)
        return Manifest(
            generation=current.next_generation(),
            erased=[*current.abandoned(at), erased],
        )

    current, written = _update(store, thread_id, change)
    return None if written is None else current


def stage(store: CheckpointStore, thread_id: str, at: str) -> tuple[Manifest, Staged]:
    """Open a new generation, with its own key, for a rewrite to write into while the live
    one stays readable. Returns the manifest as it is now (live generation unchanged)."""

    def change(current: Manifest) -> Manifest:
        staged = Staged(generation=current.next_generation(), key=new_key())
        return current.model_copy(update={"staged": staged, "erased": current.abandoned(at)})

    _, written = _update(store, thread_id, change)
    assert written is not None and written.staged is not None  # `change` always writes one
    return written, written.staged


def switch(
    store: CheckpointStore,
    thread_id: str,
    staged: Staged,
    replaced: int,
    namespaces: list[str],
    at: str,
) -> Manifest:
    """Make the staged generation the live one and erase generation `replaced`, the one it was
    written from (its key is destroyed), in one compare-and-set. Returns the manifest as it
    was."""

    def change(current: Manifest) -> Manifest:
        if current.staged != staged or current.generation != replaced:
            raise RecordConflict(
                f"{MANIFEST_KEY} of {thread_id!r}: the thread was deleted or rewritten by "
                "another saver during this rewrite"
            )
        erased = Erasure(generation=current.generation, at=at, namespaces=current.namespaces)
        return Manifest(
            generation=staged.generation,
            key=staged.key,
            namespaces=namespaces,
            erased=[*current.erased, erased],
        )

    current, _ = _update(store, thread_id, change)
    return current


__all__ = [
    "MANIFEST_KEY",
    "Erasure",
    "Manifest",
    "Staged",
    "erase",
    "live",
    "read",
    "stage",
    "switch",
]
