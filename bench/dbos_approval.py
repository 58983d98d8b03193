"""The seed approval flow as a DBOS workflow: the baseline that `approval_throughput.py` (SQLite)
and `postgres_throughput.py` (PostgreSQL) both run, written once.

A checkpointed draft step, `DBOS.recv` for the approval (sent with `DBOS.send`), then a
checkpointed send step that writes the email to `sent/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from examples.email_approval import fake_llm

F = TypeVar("F", bound=Callable[..., Any])


def _typed(decorator: Any) -> Callable[[F], F]:
    """A DBOS decorator as mypy sees it whether or not `dbos` is installed: CI type-checks
    without the bench extra, where every DBOS name is `Any`."""
    return cast(Callable[[F], F], decorator)


def approval_workflow(sent: Path) -> Callable[[str], str]:
    """Register the flow with the DBOS instance already configured; return the workflow."""
    from dbos import DBOS

    @_typed(DBOS.step())
    def draft_email(prompt: str) -> dict[str, str]:
        reply = fake_llm({"model": "demo-llm", "prompt": prompt})
        risk = "high" if "wire" in reply["body"].lower() else "low"
        return {"subject": reply["subject"], "draft": reply["body"], "risk": risk}

    @_typed(DBOS.step())
    def send_email(draft: str, key: str) -> str:
        (sent / f"{key}.txt").write_text(draft)
        return "sent"

    @_typed(DBOS.workflow())
    def approval(prompt: str) -> str:
        drafted = draft_email(prompt)
        if not DBOS.recv("approval", timeout_seconds=60):
            return "rejected"
        return send_email(drafted["draft"], str(DBOS.workflow_id or prompt))

    return approval
