"""Poison messages: what a queue sets aside when no worker can parse a message, and the
optional capability of a queue that reports them so the worker can fail their thread."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict


class PoisonMessage(BaseModel):
    """A queued message no worker can parse or validate, already set aside by the queue.

    The queue cannot fail the thread itself (it does not know the engine), so it hands this to
    whoever received (`PoisonReporting.take_poisoned`), and the worker records the failure on the
    first of `thread_ids` that names an existing thread (several when the id had to be recovered
    from a FIFO group id, which may be `thread:task`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_ids: tuple[str, ...]
    reason: str


class PoisonReporting(Protocol):
    """Optional capability of a queue: report the poison messages its receives set aside."""

    def take_poisoned(self) -> list[PoisonMessage]:
        """The poison messages found since the last call (each is returned once)."""
        ...
