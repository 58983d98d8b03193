"""In-memory implementations of every port: for unit tests, held to the same conformance suite
as the durable backends so they cannot drift."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.records import open_records
from durable_graph.checkpoint import Checkpoint, PayloadRef, ThreadRecord, VersionedRecord
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.errors import PayloadCorrupted, RecordConflict, StepConflict, StepNotFound
from durable_graph.keys import KeyWrapper
from durable_graph.listing import ThreadPage, page_of
from durable_graph.mail import MemoryMailer
from durable_graph.ports.leftovers import Leftover, LeftoverKind
from durable_graph.ports.notifier import Notification
from durable_graph.ports.payload_store import IdleDelete, StoredObject
from durable_graph.ports.transition_queue import Delivery, TransitionMessage
from durable_graph.signing import Ed25519Signer


class MemoryCheckpointStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checkpoints: dict[str, dict[int, Checkpoint]] = {}
        self._threads: dict[str, ThreadRecord] = {}
        self._records: dict[tuple[str, str], VersionedRecord] = {}

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            steps = self._checkpoints.setdefault(checkpoint.thread_id, {})
            if checkpoint.step in steps:
                raise StepConflict(checkpoint.thread_id, checkpoint.step, steps[checkpoint.step])
            steps[checkpoint.step] = checkpoint.stored()  # as a store keeps it: no state

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None:
        with self._lock:
            return self._checkpoints.get(thread_id, {}).get(step)

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            steps = self._checkpoints.get(checkpoint.thread_id, {})
            if checkpoint.step not in steps:
                raise StepNotFound(checkpoint.thread_id, checkpoint.step)
            steps[checkpoint.step] = checkpoint.stored()

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        with self._lock:
            steps = self._checkpoints.get(thread_id)
            return steps[max(steps)] if steps else None

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        with self._lock:
            steps = self._checkpoints.get(thread_id, {})
            chosen = sorted(
                (s for s in steps if before_step is None or s < before_step),
                reverse=newest_first,
            )
            if limit is not None:
                chosen = chosen[:limit]
            return [steps[s] for s in chosen]

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        with self._lock:
            record = self._threads.get(thread_id)
            return record.model_copy() if record else None

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        with self._lock:
            current = self._threads.get(record.thread_id)
            stored_rev = current.revision if current else None
            if stored_rev != expected_revision:
                raise RecordConflict(f"thread#{record.thread_id}", current)
            stored = record.model_copy(update={"revision": (stored_rev or 0) + 1})
            self._threads[record.thread_id] = stored
            return stored.model_copy()

    def advance_thread(self, record: ThreadRecord) -> bool:
        with self._lock:
            current = self._threads.get(record.thread_id)
            if current is not None and current.head_step >= record.head_step:
                return False
            kept: dict[str, Any] = {"revision": current.revision + 1 if current else 1}
            if current is not None:
                kept.update(created_at=current.created_at, origin=current.origin)
            self._threads[record.thread_id] = record.model_copy(update=kept)
            return True

    def list_threads(self, *, status: str | None = None, limit: int = 1000) -> list[ThreadRecord]:
        with self._lock:
            rows = [
                r.model_copy()
                for r in self._threads.values()
                if status is None or r.status == status
            ]
        return sorted(rows, key=lambda r: r.updated_at)[:limit]

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        with self._lock:
            rows = [r.model_copy() for r in self._threads.values()]
        return page_of(
            rows,
            status=status,
            prefix=prefix,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
        )

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None:
        with self._lock:
            return self._records.get((thread_id, key))

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        with self._lock:
            current = self._records.get((thread_id, key))
            if (current.version if current else None) != expected_version:
                raise RecordConflict(key, current)
            stored = VersionedRecord(key=key, value=value, version=(expected_version or 0) + 1)
            self._records[(thread_id, key)] = stored
            return stored

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        with self._lock:
            found = (self._records.get((thread_id, key)) for key in keys)
            return {record.key: record for record in found if record is not None}

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        with self._lock:
            counter = self._records.get((thread_id, counter_key))
            count = int(counter.value.get("count", 0)) if counter else 0
            if (thread_id, member_key) in self._records:
                return False, count
            self._records[(thread_id, member_key)] = VersionedRecord(
                key=member_key, value=value, version=1
            )
            self._records[(thread_id, counter_key)] = VersionedRecord(
                key=counter_key,
                value={"count": count + 1},
                version=(counter.version if counter else 0) + 1,
            )
            return True, count + 1


class MemoryPayloadStore:
    """Payloads in a dict, each stamped with the clock at its last put (`StampedPayloads`)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._blobs: dict[str, bytes] = {}
        self._stamps: dict[str, datetime] = {}
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self.puts = 0

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest not in self._blobs:
                self._blobs[digest] = bytes(data)
                self.puts += 1
            self._stamps[digest] = self._clock.now()
        return PayloadRef(
            uri=f"mem://sha256/{digest}", sha256=digest, size=len(data), content_type=content_type
        )

    def delete(self, ref: PayloadRef) -> bool:
        with self._lock:
            self._stamps.pop(ref.sha256, None)
            return self._blobs.pop(ref.sha256, None) is not None

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        with self._lock:  # a put waits for the lock: before (in use) or after (stored again)
            if ref.sha256 not in self._blobs:
                return "absent"
            if self._stamps.get(ref.sha256, since) >= since:
                return "in_use"
            del self._blobs[ref.sha256], self._stamps[ref.sha256]
            return "deleted"

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        with self._lock:
            digests = sorted(d for d in self._blobs if d > after)[:limit]
            return [StoredObject(d, len(self._blobs[d]), self._stamps[d]) for d in digests]

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        if dry_run:
            with self._lock:
                return [d for d in digests if d in self._stamps and self._stamps[d] < since]
        return [d for d in digests if self.delete_if_idle(_ref(d), since) == "deleted"]

    def get(self, ref: PayloadRef) -> bytes:
        data = self._blobs.get(ref.sha256)
        if data is None or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PayloadCorrupted(f"payload {ref.sha256} is missing or does not match its digest")
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        return [self.get(ref) for ref in refs]

    def corrupt(self, digest: str, data: bytes) -> None:
        """Test hook: overwrite stored bytes, as an attacker with write access could."""
        self._blobs[digest] = data


def _ref(digest: str) -> PayloadRef:
    """A ref to an object known by its digest alone (a listed one)."""
    return PayloadRef(uri=f"mem://sha256/{digest}", sha256=digest, size=0)


class MemoryQueue:
    """FIFO per group, deduplicated by id while queued, with leases like SQS visibility."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        with self._lock:
            live = {item["message"].dedup_id for item in self._items}
            for message in messages:
                if message.dedup_id in live:
                    continue
                live.add(message.dedup_id)
                self._items.append(
                    {"message": message, "visible_at": 0.0, "receipt": None, "count": 0}
                )

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        now = self._clock.now().timestamp()
        out: list[Delivery] = []
        with self._lock:
            busy = {
                i["message"].group_id
                for i in self._items
                if i["receipt"] is not None and i["visible_at"] > now
            }
            for item in self._items:
                message: TransitionMessage = item["message"]
                if len(out) >= max_messages:
                    break
                if item["visible_at"] > now or message.group_id in busy:
                    continue
                if thread_id is not None and message.thread_id != thread_id:
                    continue
                item["receipt"] = uuid.uuid4().hex
                item["visible_at"] = now + visibility_timeout
                item["count"] += 1
                busy.add(message.group_id)
                out.append(
                    Delivery(message=message, receipt=item["receipt"], receive_count=item["count"])
                )
        return out

    def ack(self, delivery: Delivery) -> None:
        self.ack_many([delivery])

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        receipts = {delivery.receipt for delivery in deliveries}
        with self._lock:
            self._items = [i for i in self._items if i["receipt"] not in receipts]

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        now = self._clock.now().timestamp()
        with self._lock:
            for item in self._items:
                if item["receipt"] == delivery.receipt:
                    item["visible_at"] = now + delay
                    item["receipt"] = None if delay <= 0 else item["receipt"]

    def depth(self) -> int:
        with self._lock:
            return len(self._items)


class MemoryNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)

    def read_all(self, thread_id: str | None = None) -> list[Notification]:
        return [n for n in self.sent if thread_id is None or n.thread_id == thread_id]

    def forget_payloads(self, thread_id: str, payloads: Mapping[int, Any]) -> None:
        self.sent = [
            n.model_copy(update={"payload": payloads[n.step]})
            if n.thread_id == thread_id and n.step in payloads
            else n
            for n in self.sent
        ]


class MemoryLeftovers:
    """`ports.leftovers.Leftovers` in a list, oldest first (written only by a backend opened with
    `deletes_payloads=False`, as on the other stores)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._left: dict[str, Leftover] = {}
        self._lock = threading.Lock()

    def leave(
        self,
        thread_id: str,
        refs: Sequence[PayloadRef],
        *,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        at, key = iso(self.clock.now()), uuid.uuid4().hex
        left = Leftover(thread_id=thread_id, step=step, row=row, kind=kind, refs=list(refs), at=at)
        with self._lock:
            self._left[key] = left.model_copy(update={"key": key})

    def due(self, before: datetime, limit: int) -> list[Leftover]:
        with self._lock:
            left = list(self._left.values())  # in the order left: oldest first
        return [x for x in left if x.at < iso(before)][:limit]

    def forget(self, leftover: Leftover) -> None:
        with self._lock:
            self._left.pop(leftover.key, None)


def memory_backend(clock: Clock | None = None, *, kek: KeyWrapper | None = None) -> Backend:
    """An in-process backend (tests); `kek` turns encryption at rest on (`keys.py`)."""
    leftovers = MemoryLeftovers(clock)
    records = open_records(
        MemoryCheckpointStore(), MemoryPayloadStore(clock), kek, leftovers=leftovers
    )
    return Backend(
        checkpoints=records,
        payloads=records.payloads,
        queue=MemoryQueue(clock),
        notifier=MemoryNotifier(),
        signer=Ed25519Signer.generate(),
        mailer=MemoryMailer(),
        leftovers=leftovers,
    )
