"""The seed exercise: draft a high-risk email, wait for a human, send it (or not).

    draft_email → human_review → send_email        interrupt_before=["human_review"]

Execution 1 runs `draft_email`, commits, suspends and exits. Execution 2, in another process,
injects `{"approved": true}` as `human_review` and runs `send_email`, which sends the email once,
through `ctx.step`, with the backend's mailer: embedded, a file in the store's outbox
(`$DURABLE_GRAPH_HOME/outbox/sent/<key>.json`); on AWS, Amazon SES from the deployment's
verified identity (`cdk deploy -c mail_from=...`). The node never touches the file system, so it
runs unchanged on Lambda, where the working directory is read-only.
"""

from __future__ import annotations

import operator
from typing import Annotated

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.mail import EmailMessage


class EmailState(BaseModel):
    user_prompt: str = ""
    recipient: str = "cfo@example.com"
    subject: str = ""
    draft: str = ""
    risk: str = "unknown"
    approved: bool | None = None
    reviewer_comment: str = ""
    sent_message_id: str | None = None
    outcome: str = "pending"
    log: Annotated[list[str], operator.add] = Field(default_factory=list)


def fake_llm(request: dict[str, str]) -> dict[str, str]:
    """Stands in for a model call; deterministic so `replay` can check it."""
    prompt = request["prompt"]
    return {
        "subject": f"Re: {prompt[:60]}",
        "body": (
            f"Dear CFO,\n\nAs requested ({prompt}), please wire USD 250,000 to the new supplier "
            "account before Friday. This is outside the usual approval limits.\n\nRegards,\nAgent"
        ),
    }


def draft_email(state: EmailState, ctx: NodeContext) -> dict[str, object]:
    reply = ctx.record("llm", fake_llm, {"model": "demo-llm", "prompt": state.user_prompt})
    risk = "high" if "wire" in reply["body"].lower() else "low"
    return {
        "subject": reply["subject"],
        "draft": reply["body"],
        "risk": risk,
        "log": [f"drafted ({risk} risk)"],
    }


def human_review(state: EmailState) -> dict[str, object]:
    """A no-op: the human's decision arrives through update_state(as_node='human_review')."""
    return {"log": ["reviewed"]}


def send_email(state: EmailState, ctx: NodeContext) -> dict[str, object]:
    if not state.approved:
        return {"outcome": "rejected", "log": ["not sent: rejected by reviewer"]}

    message = EmailMessage(to=(state.recipient,), subject=state.subject, body=state.draft)
    # Recorded once sent: a retried or redelivered task gets the recorded id back, unsent.
    message_id = ctx.step(
        "deliver", lambda: ctx.mailer.send(message, idempotency_key=ctx.idempotency_key)
    )
    return {"sent_message_id": message_id, "outcome": "sent", "log": ["sent"]}


builder = StateGraph(EmailState)
builder.add_node("draft_email", draft_email)
builder.add_node("human_review", human_review)
builder.add_node("send_email", send_email)
builder.add_edge(START, "draft_email")
builder.add_edge("draft_email", "human_review")
builder.add_edge("human_review", "send_email")
builder.add_edge("send_email", END)

graph = builder.compile(interrupt_before=["human_review"], name="examples.email_approval:graph")
