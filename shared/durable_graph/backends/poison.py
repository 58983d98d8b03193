"""The poison messages a queue set aside, kept until the worker takes them to fail their threads.

A queue moves a message it cannot parse out of the way itself (`dead_letters`, the DLQ); failing
the thread it names needs the engine, which the queue does not know, so the worker asks for them
(`PoisonReporting.take_poisoned`) after each receive. Kept in memory: a worker killed in between
leaves the message set aside with its reason, and the thread `running` until failed by hand.
"""

from __future__ import annotations

import logging
import threading

from durable_graph.ports.poison import PoisonMessage

log = logging.getLogger("durable_graph.queue")


class PoisonLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: list[PoisonMessage] = []

    def add(self, thread_id: str, reason: str) -> None:
        """Note a message of `thread_id` set aside as poison, for `reason`."""
        log.error("poison message of thread %r moved to dead_letters: %s", thread_id, reason)
        with self._lock:
            self._found.append(PoisonMessage(thread_ids=(thread_id,), reason=reason))

    def take(self) -> list[PoisonMessage]:
        """The poison messages noted since the last call."""
        with self._lock:
            found, self._found = self._found, []
        return found


__all__ = ["PoisonLog"]
