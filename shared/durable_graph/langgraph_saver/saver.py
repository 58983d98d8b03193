"""`DurableGraphSaver`: a LangGraph `BaseCheckpointSaver` on durable-graph's ledger.

An unchanged LangGraph app passes it as `compile(checkpointer=DurableGraphSaver())` and gets
every checkpoint and pending write as a record of a hash-chained, signed chain that
`durable-graph verify` and `export` check offline, values over the offload threshold in the
content-addressed payload store, and `delete_thread` that erases values while the chain still
verifies. The mapping onto records is in `ledger.py`; this class only adapts LangGraph's configs
and tuples to it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.clock import Clock
from durable_graph.errors import InvalidInput
from durable_graph.langgraph_saver.ledger import LangGraphLedger
from durable_graph.langgraph_saver.reads import StoredTuple
from durable_graph.store_uri import open_store

_WIDTH = 16  # counter digits: string order is counter order below 10^16 steps


class DurableGraphSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints on durable-graph's stores (SQLite embedded, DynamoDB + S3).

    Args:
        store: a `Backend`, or a store URI (`sqlite:///folder`, `aws://stack-or-table`, ...,
            as every command takes it, `store_uri.py`); default `$DURABLE_GRAPH_STORE`, else
            the embedded store under `$DURABLE_GRAPH_HOME`, like the rest of the library.
        serde: LangGraph's serializer (default `JsonPlusSerializer`).
        sign_every: sign the chain head every n-th checkpoint of a namespace (1: every one;
            0: only deletions). Signatures use the backend's ledger key (a local Ed25519 key
            file, or KMS on AWS).

    Example:
        >>> from langgraph.graph import StateGraph  # doctest: +SKIP
        >>> graph = builder.compile(checkpointer=DurableGraphSaver())  # doctest: +SKIP
        >>> graph.invoke({"x": 1}, {"configurable": {"thread_id": "t1"}})  # doctest: +SKIP

        and then, in a shell: `durable-graph verify t1`.
    """

    def __init__(
        self,
        store: Backend | str | None = None,
        *,
        serde: SerializerProtocol | None = None,
        clock: Clock | None = None,
        sign_every: int = 1,
    ) -> None:
        super().__init__(serde=serde)
        self._owned = not isinstance(store, Backend)
        self.backend = store if isinstance(store, Backend) else open_store(store)
        self.ledger = LangGraphLedger(self.backend, self.serde, clock=clock, sign_every=sign_every)

    @classmethod
    def embedded(cls, home: Path | str, **kwargs: Any) -> DurableGraphSaver:
        """A saver on the embedded store in folder `home` (created if needed)."""
        saver = cls(local_backend(Path(home)), **kwargs)
        saver._owned = True
        return saver

    def close(self) -> None:
        """Close the store if this saver opened it."""
        if self._owned:
            self.backend.close()

    def __enter__(self) -> DurableGraphSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sync API

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns = _where(config)
        found = self.ledger.get(thread_id, ns, get_checkpoint_id(config))
        return _tuple(found) if found is not None else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        ns = configurable.get("checkpoint_ns") if "checkpoint_ns" in configurable else None
        for found in self.ledger.find(
            None if thread_id is None else str(thread_id),
            ns,
            checkpoint_id=configurable.get("checkpoint_id"),
            filter=filter,
            before=get_checkpoint_id(before) if before is not None else None,
            limit=limit,
        ):
            yield _tuple(found)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, ns = _where(config)
        self.ledger.put(
            thread_id,
            ns,
            checkpoint,
            get_checkpoint_metadata(config, metadata),
            new_versions,
            get_checkpoint_id(config),
        )
        return _config(thread_id, ns, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, ns = _where(config)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id is None:
            raise InvalidInput("put_writes needs a checkpoint_id in the config", field="config")
        indexed = [(WRITES_IDX_MAP.get(ch, i), ch, value) for i, (ch, value) in enumerate(writes)]
        # LangGraph's durability mode, which it passes in the config: with "async" (its default)
        # it does not wait for a write, and a lost pending write only re-runs its task, so the
        # write commits without an fsync of its own (`Backend.relaxed`: it survives a killed
        # process; the next checkpoint's fsync puts it on disk, in order). Checkpoints, and
        # every record under "sync" and "exit", are durable commits.
        relaxed = (config.get("configurable") or {}).get("__pregel_durability") == "async"
        self.ledger.put_writes(thread_id, ns, checkpoint_id, indexed, task_id, task_path, relaxed)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread for LangGraph, and erase its values from the ledger.

        The ledger is append-only, so no record is removed: the thread's data key is destroyed
        (every value it sealed is unreadable for good), a signed deletion record is appended to
        each of its ledger threads, and the stored values are erased with `erasure.erase`
        (value and salt destroyed, digest kept, chunks deleted, a signed erasure record).
        Erased: every channel value, pending-write value, checkpoint header (metadata,
        versions, `versions_seen`, parent id, timestamp) and pending-write header. Kept: each
        record's position, hash, link, status, time and actor, each change's field name and
        digest, the signatures and the deletion note, so `durable-graph verify` still proves
        the chain. The thread id may be used again: it starts a new generation (ledger thread
        `<id>~<n>`).
        """
        self.ledger.delete_thread(str(thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.ledger.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only each namespace's latest checkpoint (`keep_latest`, with its pending
        writes) or delete the threads (`delete`, as `delete_thread`).

        The ledger is append-only, so `keep_latest` re-writes what it keeps into a new
        generation of the thread (ledger thread `<id>~<n>`, a new data key) and erases the old
        one as `delete_thread` does: its key destroyed, a signed deletion record, its values
        erased, every record and hash kept so that `durable-graph verify` still proves it.
        A thread with one checkpoint per namespace is left as it is.
        """
        self.ledger.prune([str(t) for t in thread_ids], strategy)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint whose metadata `run_id` is one of `run_ids`, with its
        pending writes, in every thread of the store: each thread that has one is re-written
        without them into a new generation, and the old generation erased (as `prune`). It
        reads every LangGraph thread's headers: a maintenance operation, not a hot path."""
        self.ledger.delete_for_runs([str(r) for r in run_ids])

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A counter and a random tie-breaker, as LangGraph's own savers make versions, but
        short (`0000000000000003.5f0c1a`, 23 characters, where theirs take 50): versions are
        most of a checkpoint header. A thread whose versions have the long form (copied from
        another saver, or written by an earlier release) keeps it, so versions of one thread
        always compare as strings in counter order."""
        if current is None:
            number, width = 0, _WIDTH
        elif isinstance(current, int):
            number, width = current, _WIDTH
        else:
            counter = str(current).split(".")[0]
            number, width = int(counter), max(len(counter), _WIDTH)
        return f"{number + 1:0{width}}.{random.getrandbits(24):06x}"

    # ------------------------------------------------------------------ async API
    # The stores are synchronous (SQLite, boto3): each call runs in a worker thread, so an
    # event loop is never blocked by a commit.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: [*self.list(config, filter=filter, before=before, limit=limit)]
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)


def _where(config: RunnableConfig) -> tuple[str, str]:
    configurable = config.get("configurable") or {}
    if "thread_id" not in configurable:
        raise InvalidInput("the config names no configurable.thread_id", field="thread_id")
    return str(configurable["thread_id"]), str(configurable.get("checkpoint_ns") or "")


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _tuple(found: StoredTuple) -> CheckpointTuple:
    return CheckpointTuple(
        config=_config(found.thread_id, found.ns, found.checkpoint["id"]),
        checkpoint=cast(Checkpoint, found.checkpoint),
        metadata=cast(CheckpointMetadata, found.metadata),
        parent_config=(
            _config(found.thread_id, found.ns, found.parent_id) if found.parent_id else None
        ),
        pending_writes=found.pending_writes,
    )


__all__ = ["DurableGraphSaver"]
