"""TransitionQueue on SQLite with SQS FIFO semantics: dedup while queued, one message in flight
per group, leases (visibility timeouts) that expire so a killed worker's task comes back."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from types import TracebackType

import orjson

from durable_graph.backends.local.db import Database
from durable_graph.backends.local.row_bodies import model_text
from durable_graph.backends.poison import PoisonLog
from durable_graph.backends.record_state import CACHE_THREADS
from durable_graph.backends.sql import (
    BURY,
    DELETE_LEASED,
    RELEASE_LEASED,
    lease_of,
    parse_message,
)
from durable_graph.canonical import compact_json
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports.poison import PoisonMessage
from durable_graph.ports.send_leases import SendLease
from durable_graph.ports.transition_queue import Delivery, TransitionMessage
from durable_graph.ports.worked_queues import WorkedHere

MAX_RECEIVES = 5
# A leased send in one statement: the row, with the next row id and a receipt that starts with
# it, iff the group holds no row other than the one this unit of work settles (the delivery it
# acknowledges, still under that lease) and, for a fair lease, no message of another group is
# visible; RETURNING says whether it was written (not when the group is busy, nor when the
# message is queued already: OR IGNORE on the dedup id). The id is the one SQLite would give:
# above every id in the table, and in a store of an earlier release (AUTOINCREMENT queue ids,
# schema.py) above every id it ever gave, as its sequence says.
_LEASED_SEND = (
    "INSERT OR IGNORE INTO queue (id, dedup_id, group_id, thread_id, body, visible_at, receipt, "
    "receive_count) SELECT n, :dedup, :group, :thread, :body, :until, n || ':' || :mine, 1 "
    "FROM (SELECT {next_id} AS n FROM queue) WHERE NOT EXISTS (SELECT 1 FROM queue "
    "WHERE group_id = :group AND NOT (id = :settling AND receipt IS :receipt)) "
    "AND NOT (:fair AND EXISTS (SELECT 1 FROM queue WHERE visible_at <= :now "
    "AND group_id != :group)) RETURNING receipt"
)
_NEXT_ID = "COALESCE(MAX(id), 0) + 1"
_NEXT_ID_COUNTED = (
    "MAX(COALESCE(MAX(id), 0), COALESCE((SELECT seq FROM sqlite_sequence "
    "WHERE name = 'queue'), 0)) + 1"
)
# A receive's leases in one statement: the rows (a JSON list of ids) take one random token,
# led by their own id (`lease_of`), so each row's receipt is still its own.
_LEASE_ROWS = (
    "UPDATE queue SET receipt = id || ':' || ?, visible_at = ?, "
    "receive_count = receive_count + 1 WHERE id IN (SELECT value FROM json_each(?))"
)
# Acknowledgements in one statement: the rows of a JSON list of [id, receipt] leases, each
# deleted only while its receipt is still the row's (as `DELETE_LEASED`).
_DELETE_LEASES = (
    "DELETE FROM queue WHERE id IN (SELECT q.id FROM json_each(?) j JOIN queue q "
    "ON q.id = json_extract(j.value, '$[0]') AND q.receipt = json_extract(j.value, '$[1]'))"
)
_NOT_CARRIED = {"carried"}  # a leased row keeps no carried state (`leasing_sends`)
SENT_KEPT = 1024  # sent messages remembered for an inline receive (then forgotten, re-parsed)
# Messages sent and not yet taken back by this process below which, with a worker of its own,
# what it sends carries no state (`carries_state`): their steps stay at hand meanwhile, as the
# state cache keeps CACHE_THREADS threads' steps. In a burst of starts longer than the cache,
# the first UNCARRIED may be evicted before the worker gets to them and are read back (1,000
# approval threads in flight: 0.5 checkpoint reads a thread, against 4 uncarried throughout).
UNCARRIED = CACHE_THREADS // 2


class SqliteQueue(WorkedHere):
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self._poisoned = PoisonLog()
        # Messages this process sent, by their body: a receive of one of them here (the inline
        # runner leasing the task its commit just queued) takes the object instead of parsing
        # the body again. Keyed by the exact bytes, so a row changed since is parsed as ever.
        self._sent: dict[bytes, TransitionMessage] = {}
        self._local = threading.local()  # this thread's open `leasing_sends` blocks
        self._look: str | None = None  # `_LEASED_SEND` for this store's queue table
        # Whether a worker of this process serves the queue (`carries_state`).
        self.worked_here = False

    def carries_state(self) -> bool:
        """`WorkedHere`: a message sent now carries its step's state unless a worker of this
        process serves the queue and fewer than `UNCARRIED` messages it sent wait for it."""
        return not self.worked_here or len(self._sent) >= UNCARRIED

    def leasing_sends(self, lease: SendLease) -> LeasingBlock:
        """Within this block (on this thread), `send` queues `lease.thread_id`'s messages
        already leased to the caller (`LeasingSends`), up to `lease.max_messages`: a row
        written with its receipt, lease expiry and first receive, in the transaction that
        queues it, which the caller then runs from `lease.leased` without a receive.

        Only where FIFO order allows it: a message whose group holds another row (an older
        message, or one in flight) is queued as usual and counted in `lease.unleased`. The
        row keeps no carried state (`followups.messages_for`): only this process's first
        delivery would use it, and that one runs from the message in memory; any later
        delivery reads the step from the store. A `fair` lease also leaves a message to the
        queue while a message of another group waits, so FIFO order across threads holds."""
        return LeasingBlock(self._leases(), lease)

    def _leases(self) -> list[SendLease]:
        held: list[SendLease] | None = getattr(self._local, "leases", None)
        if held is None:
            held = self._local.leases = []
        return held

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        if not messages:
            return
        leases = self._leases()
        if leases:
            messages = self._send_leased(messages, leases)
            if not messages:
                return
        rows = [(m.dedup_id, m.group_id, m.thread_id, m.model_dump_json()) for m in messages]
        with self.db.write() as conn:
            conn.executemany(
                # OR IGNORE on the UNIQUE dedup id: a message already queued is not queued twice.
                "INSERT OR IGNORE INTO queue (dedup_id, group_id, thread_id, body) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        if len(self._sent) > SENT_KEPT:
            self._sent.clear()
        for message, row in zip(messages, rows, strict=True):
            self._sent[row[3].encode()] = message

    def _send_leased(
        self, messages: Sequence[TransitionMessage], leases: list[SendLease]
    ) -> list[TransitionMessage]:
        """Queue, leased, the messages a `leasing_sends` block of this thread takes; return
        the others, for `send` to queue as usual."""
        rest: list[TransitionMessage] = []
        now = self.clock.now().timestamp()
        with self.db.write() as conn:
            for message in messages:
                lease = _lease_of(leases, message.thread_id)
                if lease is None:
                    rest.append(message)
                    continue
                if len(lease.leased) >= lease.max_messages:
                    lease.unleased += 1
                    rest.append(message)
                    continue
                settling = lease.settling
                row_id, receipt = lease_of(settling) if settling is not None else (-1, None)
                written = conn.execute(  # fetchall: stepped to its end, so done
                    self._leased_send(conn),
                    {
                        "dedup": message.dedup_id,
                        "group": message.group_id,
                        "thread": message.thread_id,
                        "body": model_text(message, _NOT_CARRIED),
                        "until": now + lease.visibility_timeout,
                        "mine": os.urandom(16).hex(),  # as random as a uuid4, 10x cheaper
                        "settling": row_id,
                        "receipt": receipt,
                        "fair": lease.fair,
                        "now": now,
                    },
                ).fetchall()
                if not written:  # the group is busy, or the message queued already
                    lease.unleased += 1
                    rest.append(message)  # queued as usual (or not twice: its dedup id)
                    continue
                lease.leased.append(
                    Delivery(message=message, receipt=written[0][0], receive_count=1)
                )
        return rest

    def _leased_send(self, conn: sqlite3.Connection) -> str:
        if self._look is None:
            row = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'queue'").fetchone()
            counted = row is not None and "AUTOINCREMENT" in str(row[0]).upper()
            self._look = _LEASED_SEND.format(next_id=_NEXT_ID_COUNTED if counted else _NEXT_ID)
        return self._look

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        """Lease up to `max_messages` messages, at most one per FIFO group.

        A row whose body cannot be parsed or validated (a poison message) is moved to
        `dead_letters` with the reason in the lease's own transaction, so no worker sees it
        again and it cannot make every poll fail; the receive goes on with the next rows. The
        thread it names (its `thread_id` column is readable when the body is not) is reported by
        `take_poisoned`, for the worker to fail: the queue does not know the engine.
        """
        now = self.clock.now().timestamp()
        out: list[Delivery] = []
        if not self.db.in_write():
            with self.db.read() as conn:  # cheap look before taking the write lock
                found = conn.execute("SELECT 1 FROM queue WHERE visible_at <= ? LIMIT 1", (now,))
                if found.fetchone() is None:
                    return out
        # Relaxed (db.py): a lease a power cut loses is a message delivered again, which every
        # crash point already survives; inside a step's transaction it is part of that commit.
        with self.db.write(durable=False) as conn:
            while len(out) < max_messages:
                rows = self._visible(conn, now, thread_id, max_messages - len(out))
                if not rows:
                    break
                # The row id leads the receipt, so settling a lease is a primary-key lookup
                # (no index on receipts to keep up on every queue write).
                token = os.urandom(16).hex()  # as random as a uuid4, 10x cheaper
                ids = orjson.dumps([row[0] for row in rows]).decode()
                conn.execute(_LEASE_ROWS, (token, now + visibility_timeout, ids))
                poisoned = 0
                for row_id, body, count, row_thread, dedup_id in rows:
                    receipt = f"{row_id}:{token}"
                    message = self._sent.pop(body, None) or parse_message(body)
                    if isinstance(message, TransitionMessage):
                        out.append(
                            Delivery(message=message, receipt=receipt, receive_count=count + 1)
                        )
                        continue
                    poisoned += 1
                    self._bury(conn, row_id, _text(dedup_id), _text(body), message)
                    self._poisoned.add(_text(row_thread), message)
                if not poisoned:  # nothing set aside: no row behind one can have become next
                    break
        if out:
            # A message another thread of this process queued is visible once its COMMIT
            # returned, before that thread's fsync: handed out only once it is on disk (in a
            # unit of work of this thread, once that one committed: `durable`).
            self.db.durable()
        return out

    @staticmethod
    def _visible(
        conn: sqlite3.Connection, now: float, thread_id: str | None, limit: int
    ) -> list[tuple[int, bytes, int, bytes, bytes]]:
        """The first visible message of each group with nothing in flight, oldest first.

        Text columns are read as bytes: a row holding invalid UTF-8 must not fail the query.
        """
        sql = (
            "SELECT id, CAST(body AS BLOB), receive_count, CAST(thread_id AS BLOB), "
            "CAST(dedup_id AS BLOB) FROM queue q WHERE visible_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM queue b WHERE b.group_id = q.group_id "
            "AND b.receipt IS NOT NULL AND b.visible_at > ?) "
            "AND id = (SELECT MIN(id) FROM queue c WHERE c.group_id = q.group_id)"
        )
        params: list[object] = [now, now]
        if thread_id is not None:
            sql += " AND thread_id = ?"
            params.append(thread_id)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return conn.execute(sql, params).fetchall()

    def _bury(
        self, conn: sqlite3.Connection, row_id: int, dedup_id: str, body: str, reason: str
    ) -> None:
        conn.execute("DELETE FROM queue WHERE id = ?", (row_id,))
        conn.execute(BURY, (dedup_id, body, reason, iso(self.clock.now())))

    def take_poisoned(self) -> list[PoisonMessage]:
        """The poison messages set aside since the last call; see `PoisonReporting`."""
        return self._poisoned.take()

    def ack(self, delivery: Delivery) -> None:
        # Relaxed when on its own: a lost ack is a redelivery, which finds its step committed.
        with self.db.write(durable=False) as conn:
            conn.execute(DELETE_LEASED, lease_of(delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """One DELETE for all of `deliveries` (a group commit's batch: in its transaction)."""
        if not deliveries:
            return
        leases = orjson.dumps([lease_of(delivery) for delivery in deliveries]).decode()
        with self.db.write(durable=False) as conn:
            conn.execute(_DELETE_LEASES, (leases,))

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        now = self.clock.now().timestamp()
        with self.db.write(durable=False) as conn:  # lost: the lease simply runs out
            conn.execute(RELEASE_LEASED, (now + delay, *lease_of(delivery)))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a poison message aside, like an SQS redrive to the DLQ."""
        with self.db.write() as conn:
            conn.execute(DELETE_LEASED, lease_of(delivery))
            conn.execute(
                BURY,
                (
                    delivery.message.dedup_id,
                    compact_json(delivery.message.model_dump(mode="json")),
                    reason,
                    iso(self.clock.now()),
                ),
            )

    def depth(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])


class LeasingBlock:
    """`SqliteQueue.leasing_sends`'s block: a class rather than a generator (a thread's steps
    open 8 of them), which adds its lease to the thread's open ones for its duration."""

    __slots__ = ("_held", "_lease")

    def __init__(self, held: list[SendLease], lease: SendLease) -> None:
        self._held = held
        self._lease = lease

    def __enter__(self) -> SendLease:
        self._held.append(self._lease)
        return self._lease

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._held.remove(self._lease)


def _lease_of(leases: list[SendLease], thread_id: str) -> SendLease | None:
    """The innermost open `leasing_sends` block of `thread_id` (a subgraph's run nests its own
    inside its parent's task), if any."""
    return next((lease for lease in reversed(leases) if lease.thread_id == thread_id), None)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
