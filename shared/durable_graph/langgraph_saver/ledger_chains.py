"""The ledger threads under a `LangGraphLedger`: the caches a saver keeps of them (each ledger
thread's index, each generation's cipher, each LangGraph thread's manifest) and the one append
loop every record the saver writes goes through (`_append`: build on the head this process
knows, append in the backend's unit of work, and on a lost race catch up and build again).
The base of `ledger.LangGraphLedger`; `ledger.py` describes the records."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, Status
from durable_graph.clock import Clock, SystemClock
from durable_graph.errors import StepConflict
from durable_graph.langgraph_saver import manifest
from durable_graph.langgraph_saver.cipher import ThreadCipher, Typed
from durable_graph.langgraph_saver.diff import Serde
from durable_graph.langgraph_saver.index import HEADER, LedgerIndex
from durable_graph.langgraph_saver.names import GRAPH_NAME, LedgerName
from durable_graph.langgraph_saver.reads import TupleReader
from durable_graph.sealing import Base
from durable_graph.signing import sign_head
from durable_graph.state import FieldChange
from durable_graph.step_sealer import StepSealer
from durable_graph.threads import sync_thread

log = logging.getLogger("durable_graph.langgraph_saver")

GRAPH = GraphRef(name=GRAPH_NAME, version="saver-1")
CACHE_THREADS = 1024
_ATTEMPTS = 50


@dataclass(frozen=True)
class ListsAt:
    """The serialized items of each list channel as of one checkpoint step: how a later put
    tells a list that only grew (stored as an `add` of the new items) from one that changed."""

    step: int
    items: dict[str, list[Typed]]


class LedgerChains:
    """The backend, the serializer, the caches and the append loop of a `LangGraphLedger`
    (thread-safe within a process under `_lock`)."""

    def __init__(
        self, backend: Backend, serde: Serde, *, clock: Clock | None = None, sign_every: int = 1
    ) -> None:
        self.backend = backend
        self.store = backend.checkpoints
        self.serde = serde
        self.clock = clock or SystemClock()
        self.sign_every = sign_every
        self.sealer = StepSealer(backend, GRAPH, self.clock)
        self.reader = TupleReader(backend.checkpoints, backend.payloads, serde)
        self.actor = Actor(kind="worker", id=f"langgraph:{socket.gethostname()}:{os.getpid()}")
        self._lock = threading.RLock()
        self._indexes: OrderedDict[str, LedgerIndex] = OrderedDict()
        self._lists: dict[str, ListsAt] = {}
        self._manifests: dict[str, manifest.Manifest] = {}
        self._ciphers: dict[str, ThreadCipher] = {}

    def _append(
        self,
        name: LedgerName,
        build: Callable[
            [dict[str, Any], LedgerIndex], tuple[dict[str, FieldChange], dict[str, Any]]
        ],
        *,
        status: Status = "running",
        relaxed: bool = False,
    ) -> Checkpoint:
        """Build the record on the head this process knows and append it; on a lost race,
        catch up with the chain and build again."""
        lid = name.ledger_id
        for attempt in range(_ATTEMPTS):
            index = self._index(lid, sync=attempt > 0)
            step = index.next_step
            prev = self.store.peek(lid, step - 1) or self.store.get_checkpoint(lid, step - 1)
            changed, values = build(prev.values if prev is not None else {}, index)
            if not changed and prev is not None:
                return prev
            record = self.sealer.seal(
                thread_id=lid,
                step=step,
                source="input" if step == 0 else "node",
                values=values,
                next_tasks=[],
                status=status,
                actor=self.actor,
                changed=changed,
                previous=Base.of(prev) if prev is not None else None,
            )
            count = len(index.checkpoints) + (HEADER in changed)
            sign = status != "running" or (
                HEADER in changed and self.sign_every > 0 and count % self.sign_every == 0
            )
            try:
                # One transaction on the embedded store (one fsync for the record, the thread
                # head and the signature); elsewhere the order alone is safe: a head or a
                # signature missing after a crash is what `verify` reports and `sign` repairs.
                with self.backend.relaxed() if relaxed else self.backend.atomic():
                    self.store.append_checkpoint(record)
                    if step == 0 or status != "running":
                        sync_thread(self.store, record, self.clock)
                    if sign:
                        self._sign(record)
            except StepConflict:
                continue
            index.add(record, self.backend.payloads)
            return record
        raise StepConflict(lid, self._index(lid).next_step)

    def _sign(self, record: Checkpoint) -> None:
        """Sign the head; a signing failure (key file unreadable, KMS down) is logged and left
        to `durable-graph sign`, as the engine does."""
        if self.backend.signer is None:
            return
        try:
            sign_head(self.store, self.backend.signer, record, self.clock)
        except Exception:
            log.exception("could not sign the chain head", extra={"thread_id": record.thread_id})

    def _index(self, lid: str, *, sync: bool = False) -> LedgerIndex:
        index = self._indexes.get(lid)
        if index is None:
            index = self._indexes[lid] = LedgerIndex()
            sync = True
        self._indexes.move_to_end(lid)
        while len(self._indexes) > CACHE_THREADS:
            dropped, _ = self._indexes.popitem(last=False)
            self._lists.pop(dropped, None)
        if sync:
            head = self.store.inner.head_checkpoint(lid)
            missing = head.step + 1 - index.next_step if head is not None else 0
            if missing > 0:
                rows = self.store.inner.list_checkpoints(lid, newest_first=True, limit=missing)
                for row in reversed(rows):
                    index.add(row, self.backend.payloads)
        return index

    def _cipher(self, key: str) -> ThreadCipher:
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= CACHE_THREADS:
                self._ciphers.clear()
            cipher = self._ciphers[key] = ThreadCipher(key)
        return cipher

    def _manifest(self, thread_id: str) -> manifest.Manifest | None:
        cached = self._manifests.get(thread_id)
        if cached is None:
            found, version = manifest.read(self.store, thread_id)
            if version is None:
                return None
            cached = self._manifests[thread_id] = found
        return cached

    def _live(self, thread_id: str, ns: str) -> manifest.Manifest:
        cached = self._manifests.get(thread_id)
        if cached is not None and cached.key is not None and ns in cached.namespaces:
            name = LedgerName(thread_id, ns, cached.generation)
            deleted = self._index(name.ledger_id).deleted  # by another saver, since cached
            if not deleted:
                return cached
        fresh = self._manifests[thread_id] = manifest.live(self.store, thread_id, ns)
        return fresh

    def _open(self, thread_id: str, ns: str) -> tuple[LedgerName, LedgerIndex, ThreadCipher] | None:
        """The live ledger thread of (thread, ns), its index caught up with the store."""
        for _ in range(2):
            current = self._manifest(thread_id)
            if current is None or current.key is None or ns not in current.namespaces:
                return None
            name = LedgerName(thread_id, ns, current.generation)
            index = self._index(name.ledger_id, sync=True)
            if not index.deleted:
                return name, index, self._cipher(current.key)
            self._manifests.pop(thread_id, None)  # deleted elsewhere: read the manifest again
        return None

    def _thread_ids(self) -> list[str]:
        ids = []
        for record in self.store.list_threads(limit=1_000_000):
            if record.graph.name != GRAPH.name:
                continue
            name = LedgerName.parse(record.thread_id)
            if name.thread_id not in ids:
                ids.append(name.thread_id)
        return ids
