"""The notifier port: notifications a step sends (approval links), inside its unit of work,
and the optional capability of a notifier that keeps them (the outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Notification(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    thread_id: str
    step: int
    node: str | None = None
    summary: str = ""
    payload: Any = None
    links: dict[str, str] = Field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None:
        """Called inside the step's unit of work (`Backend.atomic`), right after the step's
        conditional append. A backend whose store is transactional writes the notification
        as an outbox row in that transaction (it exists iff the step committed, at no extra
        fsync); others send it there (SNS), and a redelivery after a crash sends it again."""
        ...


@runtime_checkable
class NotificationLog(Protocol):
    """Optional capability of a notifier that keeps what it was given (the outbox rows)."""

    def read_all(self, thread_id: str | None = None) -> list[Notification]:
        """Every committed notification (of `thread_id`, when given), oldest first."""
        ...

    def forget_payloads(self, thread_id: str, payloads: Mapping[int, Any]) -> None:
        """Replace the payload of each kept notification of `thread_id` at a step of
        `payloads` by the value given for that step (erasure: the erased marker)."""
        ...
