"""TransitionQueue on PostgreSQL with SQS FIFO semantics, for many workers on many hosts.

The same contract as the embedded queue (`backends/local/sqlite_queue.py`): a dedup id is
queued once (`UNIQUE`, `ON CONFLICT DO NOTHING`); at most one message of a FIFO group is in
flight, oldest first; a lease (`visible_at`, the receipt) that runs out makes the message
visible again with its receive count kept. Leasing is one statement, `SELECT ... FOR UPDATE SKIP
LOCKED` feeding an `UPDATE`: workers racing for the queue skip each other's rows instead of
waiting on them, and a row another worker is leasing right now is skipped, never leased twice.

A send (and a release without delay) also `NOTIFY`s the channel `durable_graph_queue`, which
PostgreSQL delivers when the sending transaction commits; an idle worker `wait`s on a
`LISTEN`ing connection and wakes at once, instead of polling. The wait is bounded, since a
lease that runs out or a delayed release notifies no one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import psycopg

from durable_graph.backends.poison import PoisonLog
from durable_graph.backends.postgres.db import CONNECT_TIMEOUT_SECONDS, Database
from durable_graph.backends.sql import (
    BURY,
    DELETE_LEASED,
    POSTGRES,
    RELEASE_LEASED,
    lease_of,
    parse_message,
)
from durable_graph.canonical import compact_json
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.ports.poison import PoisonMessage
from durable_graph.ports.transition_queue import Delivery, TransitionMessage

log = logging.getLogger("durable_graph.queue")

CHANNEL = "durable_graph_queue"
_WHERE = "working the transition queue"

_SEND = f"""
WITH sent AS (
    INSERT INTO queue (dedup_id, group_id, thread_id, body)
    SELECT dedup_id, group_id, thread_id, body
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])
        WITH ORDINALITY AS m (dedup_id, group_id, thread_id, body, n)
    ORDER BY n
    ON CONFLICT (dedup_id) DO NOTHING  -- a message already queued is not queued twice
    RETURNING 1
)
SELECT pg_notify('{CHANNEL}', '') WHERE EXISTS (SELECT 1 FROM sent)
"""

# The first message of each group, if visible and nothing of its group is in flight; rows
# another worker is locking right now are skipped (it is leasing them).
_LEASE = """
WITH picked AS (
    SELECT id FROM queue q
    WHERE visible_at <= %(now)s {thread}
      AND id = (SELECT min(id) FROM queue c WHERE c.group_id = q.group_id)
      AND NOT EXISTS (SELECT 1 FROM queue b WHERE b.group_id = q.group_id
                      AND b.receipt IS NOT NULL AND b.visible_at > %(now)s)
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE queue SET
    receipt = queue.id || ':' || md5(random()::text || clock_timestamp()::text),
    visible_at = %(until)s,
    receive_count = queue.receive_count + 1
FROM picked WHERE queue.id = picked.id
RETURNING queue.id, queue.body, queue.receive_count, queue.thread_id, queue.dedup_id,
    queue.receipt
"""
_LEASE_ANY = _LEASE.format(thread="")
_LEASE_THREAD = _LEASE.format(thread="AND thread_id = %(thread)s")

# Acknowledgements in one statement: each row of the (id, receipt) leases, while its receipt
# is still the row's (as `DELETE_LEASED`).
_DELETE_LEASES = """
DELETE FROM queue USING unnest(%s::bigint[], %s::text[]) AS lease (id, receipt)
WHERE queue.id = lease.id AND queue.receipt = lease.receipt
"""

# The statements the embedded queue runs too (`backends/sql.py`), spelt for psycopg.
_DELETE_LEASED = POSTGRES.sql(DELETE_LEASED).encode()
_RELEASE_LEASED = POSTGRES.sql(RELEASE_LEASED).encode()
_BURY = POSTGRES.sql(BURY).encode()


class PostgresQueue:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self._poisoned = PoisonLog()
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection | None = None

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        if not messages:
            return
        columns: tuple[list[str], ...] = ([], [], [], [])
        for m in messages:
            for column, value in zip(
                columns, (m.dedup_id, m.group_id, m.thread_id, m.model_dump_json()), strict=True
            ):
                column.append(value)
        with self.db.connection(_WHERE) as conn:
            conn.execute(_SEND, columns)

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        """Lease up to `max_messages` messages, at most one per FIFO group.

        One statement (atomic on its own: no transaction to open when not inside a unit of
        work). A row whose body cannot be parsed or validated (a poison message) is moved to
        `dead_letters` with the reason, by its lease, and reported by `take_poisoned`, as the
        embedded queue does; the receive goes on with the next rows.
        """
        now = self.clock.now().timestamp()
        sql = _LEASE_ANY if thread_id is None else _LEASE_THREAD
        out: list[Delivery] = []
        while len(out) < max_messages:
            params = {
                "now": now,
                "until": now + visibility_timeout,
                "thread": thread_id,
                "limit": max_messages - len(out),
            }
            with self.db.connection(_WHERE) as conn:
                rows = conn.execute(sql, params).fetchall()
            poisoned = 0
            for row_id, body, count, row_thread, dedup_id, receipt in sorted(rows):
                message = parse_message(body)
                if isinstance(message, TransitionMessage):
                    out.append(Delivery(message=message, receipt=receipt, receive_count=count))
                    continue
                poisoned += 1
                self._bury((row_id, receipt), dedup_id, body, message)
                self._poisoned.add(row_thread, message)
            if not poisoned:  # nothing set aside: no row behind one can have become next
                break
        return out

    def _bury(self, lease: tuple[int, str], dedup_id: str, body: str, reason: str) -> None:
        """Move a leased row to `dead_letters` (nothing happens if the lease was lost)."""
        with self.db.transaction(_WHERE) as conn:
            if conn.execute(_DELETE_LEASED, lease).rowcount:
                conn.execute(_BURY, (dedup_id, body, reason, iso(self.clock.now())))

    def take_poisoned(self) -> list[PoisonMessage]:
        """The poison messages set aside since the last call; see `PoisonReporting`."""
        return self._poisoned.take()

    def ack(self, delivery: Delivery) -> None:
        with self.db.connection(_WHERE) as conn:
            conn.execute(_DELETE_LEASED, lease_of(delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """One DELETE for all of `deliveries` (a group commit's batch: in its transaction)."""
        if not deliveries:
            return
        ids, receipts = zip(*(lease_of(delivery) for delivery in deliveries), strict=True)
        with self.db.connection(_WHERE) as conn:
            conn.execute(_DELETE_LEASES, (list(ids), list(receipts)))

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        now = self.clock.now().timestamp()
        with self.db.connection(_WHERE) as conn:
            conn.execute(_RELEASE_LEASED, (now + delay, *lease_of(delivery)))
            if delay <= 0:
                conn.execute(f"NOTIFY {CHANNEL}")

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a poison message aside, like an SQS redrive to the DLQ."""
        body = compact_json(delivery.message.model_dump(mode="json"))
        self._bury(lease_of(delivery), delivery.message.dedup_id, body, reason)

    def depth(self) -> int:
        with self.db.connection(_WHERE) as conn:
            row = conn.execute("SELECT count(*) FROM queue").fetchone()
        return int(row[0]) if row else 0

    def wait(self, timeout: float) -> bool:
        """Block until a message may have been queued (a `NOTIFY`) or `timeout` seconds pass;
        True when woken by a notification. An idle worker calls this instead of sleeping.

        The listening connection is opened on first use and kept; notifications that arrive
        while the worker is busy are kept by it, so the next wait returns at once. A lost
        connection (a server restart) is dropped, and the wait sleeps out its time instead.
        """
        with self._listen_lock:
            try:
                listener = self._listening()
                woken = any(True for _ in listener.notifies(timeout=timeout, stop_after=1))
                if woken:  # several sends may have queued up: one receive covers them all
                    for _ in listener.notifies(timeout=0):
                        pass
                return woken
            except psycopg.Error as exc:
                log.info("queue listener lost, reconnecting on the next wait: %s", exc)
                self._close_listener()
                threading.Event().wait(timeout)
                return False

    def _listening(self) -> psycopg.Connection:
        if self._listener is None or self._listener.closed:
            self._listener = psycopg.connect(
                self.db.uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
            self._listener.execute(f"LISTEN {CHANNEL}")
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        with self._listen_lock:
            self._close_listener()
