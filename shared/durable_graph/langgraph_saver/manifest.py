"""The thread manifest: which generation of a LangGraph thread is live, its data key, and the
namespaces (subgraphs) written in it. One small compare-and-set record beside the chain
(`lg#manifest` of the thread's root ledger id); not part of any hash chain, because it is the one
thing `delete_thread` must be able to destroy (the key).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.checkpoint import VersionedRecord
from durable_graph.errors import RecordConflict
from durable_graph.langgraph_saver.cipher import new_key
from durable_graph.langgraph_saver.names import manifest_thread
from durable_graph.ports import CheckpointStore

MANIFEST_KEY = "lg#manifest"
_ATTEMPTS = 20


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int
    at: str
    namespaces: list[str]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int = 0
    key: str | None = None  # None: nothing written in this generation yet, or erased
    namespaces: list[str] = Field(default_factory=list)
    erased: list[Erasure] = Field(default_factory=list)


def read(store: CheckpointStore, thread_id: str) -> tuple[Manifest, int | None]:
    """The manifest and its version (None: never written)."""
    record = store.get_record(manifest_thread(thread_id), MANIFEST_KEY)
    if record is None:
        return Manifest(), None
    return Manifest.model_validate(record.value), record.version


def _swap(
    store: CheckpointStore, thread_id: str, new: Manifest, version: int | None
) -> VersionedRecord:
    # Create iff absent (version None) or replace iff nobody changed it since we read it.
    return store.put_record(
        manifest_thread(thread_id),
        MANIFEST_KEY,
        new.model_dump(mode="json"),
        expected_version=version,
    )


def live(store: CheckpointStore, thread_id: str, ns: str) -> Manifest:
    """The manifest of a thread about to be written in `ns`: with a key and `ns` registered,
    creating either when missing (a lost race re-reads the winner's)."""
    for _ in range(_ATTEMPTS):
        current, version = read(store, thread_id)
        if current.key is not None and ns in current.namespaces:
            return current
        wanted = current.model_copy(
            update={
                "key": current.key or new_key(),
                "namespaces": [*current.namespaces, *([] if ns in current.namespaces else [ns])],
            }
        )
        try:
            _swap(store, thread_id, wanted, version)
            return wanted
        except RecordConflict:
            continue
    raise RecordConflict(f"{MANIFEST_KEY} of {thread_id!r}")


def erase(store: CheckpointStore, thread_id: str, at: str) -> Manifest | None:
    """Destroy the live generation's key and start the next generation. Returns the manifest as
    it was (None: nothing to erase)."""
    for _ in range(_ATTEMPTS):
        current, version = read(store, thread_id)
        if current.key is None and not current.namespaces:
            return None
        erased = Erasure(generation=current.generation, at=at, namespaces=current.namespaces)
        wanted = Manifest(generation=current.generation + 1, erased=[*current.erased, erased])
        try:
            _swap(store, thread_id, wanted, version)
            return current
        except RecordConflict:
            continue
    raise RecordConflict(f"{MANIFEST_KEY} of {thread_id!r}")


__all__ = ["MANIFEST_KEY", "Erasure", "Manifest", "erase", "live", "read"]
