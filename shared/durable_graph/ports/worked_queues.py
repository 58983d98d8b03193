"""Queues worked where they are sent: the optional capability of a queue whose workers read a
step from the store as cheaply as from a message, so that a process working it sends messages
without their step's state while it still holds those steps."""

from __future__ import annotations

from typing import Protocol


class WorkedHere(Protocol):
    """Optional capability of a queue kept beside its store (the embedded one: one file, so
    reading a step back costs a worker of another process little more than parsing it out of
    a message would).

    `worked_here` turns true once a worker of this process serves the queue (`Worker.run`
    leasing every thread's tasks), and stays so. From then on a message this process sends
    carries no state (`followups.messages_for`) while `carries_state` says so: while the
    process has sent fewer messages it has not taken back than it keeps steps at hand. Its
    own worker, which takes them right back, runs each task from the step it holds
    (`CheckpointStore.peek`), so a carried copy was built, serialised and written for
    nothing; a worker of another process reads the step from the store, as every redelivery
    does. Past that many (a burst of starts), messages carry their state again: the steps
    they follow may no longer be at hand when the worker gets to them, and reading each back
    costs more than carrying it. A queue that workers on other hosts lease from (PostgreSQL,
    SQS) has no such capability: its messages carry state."""

    worked_here: bool

    def carries_state(self) -> bool:
        """Whether a message sent now should carry its step's state."""
        ...
