"""The seed's email-approval graph written for LangGraph, for the benchmarks that compare
against it (`approval_throughput.py` on SQLite, `postgres_throughput.py` on PostgreSQL). The
same nodes as `examples/email_approval.py`: a deterministic fake LLM drafts, a human reviews,
the email is written to a folder.
"""

from __future__ import annotations

import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict


class LgState(TypedDict, total=False):
    user_prompt: str
    recipient: str
    subject: str
    draft: str
    risk: str
    approved: bool | None
    outcome: str
    log: Annotated[list[str], operator.add]


def langgraph_email_graph(outbox: Path) -> Any:
    """The seed's graph written for LangGraph (uncompiled): the same nodes, the email written
    to `outbox`."""
    from langgraph.graph import END, START, StateGraph

    from examples.email_approval import fake_llm

    def draft_email(state: LgState) -> dict[str, Any]:
        reply = fake_llm({"model": "demo-llm", "prompt": state["user_prompt"]})
        risk = "high" if "wire" in reply["body"].lower() else "low"
        return {
            "subject": reply["subject"],
            "draft": reply["body"],
            "risk": risk,
            "log": [f"drafted ({risk} risk)"],
        }

    def human_review(state: LgState) -> dict[str, Any]:
        return {"log": ["reviewed"]}

    def send_email(state: LgState) -> dict[str, Any]:
        if not state.get("approved"):
            return {"outcome": "rejected"}
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{len(state['draft'])}-{time.perf_counter_ns()}.txt").write_text(state["draft"])
        return {"outcome": "sent", "log": ["sent"]}

    builder = StateGraph(LgState)
    builder.add_node("draft_email", draft_email)
    builder.add_node("human_review", human_review)
    builder.add_node("send_email", send_email)
    builder.add_edge(START, "draft_email")
    builder.add_edge("draft_email", "human_review")
    builder.add_edge("human_review", "send_email")
    builder.add_edge("send_email", END)
    return builder
