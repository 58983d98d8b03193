"""The outbox's file copies (`outbox/sent/<key>.json`, `outbox/notifications.jsonl`), written
in batches, off the path of the step that committed their rows.

The rows are the mail and the notifications (`outbox_mailer.py`, `outbox.py`): the files are a
convenience for a newcomer reading what the graph sent, never fsynced, and a crash right after a
commit could always leave one out. Writing them on the committing thread cost a temp file, a
link and an unlink per message (about 5% of the embedded approval flow's CPU, all of it on the
step's path). Here the thread only hands the write over: the copies handed over within
`BATCH_SECONDS` are written together by one short-lived timer thread (a thread woken per copy
cost more CPU in switches than the write itself), in the order they were handed over, so the
notifications file keeps the commit order. The bytes are the same; they land a moment later.

`drain()` writes what is pending on the caller's thread and waits for a batch being written:
`Backend.close` (through the mailer and the notifier) and interpreter exit (`atexit`) call it, so
a CLI command that sent mail has written its copy before the process ends. A forked child leaves
the parent's pending copies to the parent.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("durable_graph.outbox")

BATCH_SECONDS = 0.2  # how long a copy may wait for others to be written with it
DRAIN_SECONDS = 30.0  # the longest `drain` waits for a batch (a stuck file system)


class FileCopies:
    """File writes run in batches, in order, by a timer thread or by `drain`."""

    def __init__(self, batch_seconds: float = BATCH_SECONDS) -> None:
        self.batch_seconds = batch_seconds
        self._lock = threading.Lock()  # guards the pending jobs
        self._writing = threading.Lock()  # held while a batch is written: one at a time, in order
        self._jobs: list[Callable[[], None]] = []
        self._armed = False  # a timer will write the pending jobs
        self._pid = os.getpid()

    def put(self, job: Callable[[], None]) -> None:
        """Run `job` soon, off this thread, after every job handed over before it."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's jobs are the parent's
                self._pid, self._jobs, self._armed = os.getpid(), [], False
            self._jobs.append(job)
            if self._armed:
                return
            self._armed = True
        timer = threading.Timer(self.batch_seconds, self.drain)
        timer.name = "durable-graph-outbox"
        timer.daemon = True
        timer.start()

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Run every job handed over so far; False if a batch being written by another thread
        did not finish within `timeout`."""
        if not self._writing.acquire(timeout=timeout):
            return False
        try:
            with self._lock:
                if self._pid != os.getpid():
                    return True
                jobs, self._jobs, self._armed = self._jobs, [], False
            for job in jobs:
                try:
                    job()
                except Exception:  # a copy is best effort; the row it copies is committed
                    log.exception("writing an outbox file copy failed")
            return True
        finally:
            self._writing.release()


COPIES = FileCopies()
atexit.register(COPIES.drain)

__all__ = ["COPIES", "FileCopies"]
