"""Queues worked where they are sent: the optional capability of a queue whose workers read a
step from the store as cheaply as from a message, so that a process working it sends messages
without their step's state while it still holds those steps."""

from __future__ import annotations

from typing import Protocol, TypeGuard


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
    SQS) has no such capability: its messages carry state.

    A queue has it by naming this class among its bases (`SqliteQueue`), so mypy checks that
    it conforms; `is_worked_here` asks that of its class."""

    worked_here: bool

    def carries_state(self) -> bool:
        """Whether a message sent now should carry its step's state."""
        ...


def is_worked_here(queue: object) -> TypeGuard[WorkedHere]:
    """Whether `queue` has the capability: its class names `WorkedHere` among its bases.

    Asked by every commit that sends (`FollowUps.after_commit`), so it looks the class's MRO
    up (~60 ns, as much as the `getattr` it replaces) rather than `isinstance` against a
    `runtime_checkable` protocol, which looks up each of the protocol's members on the object
    (~6 us on Python 3.11, on each step). Declared, not inferred from members: a queue that
    merely has a `carries_state` method is not taken to mean this by it."""
    return WorkedHere in type(queue).__mro__
