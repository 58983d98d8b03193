"""The approval page and the small result/error pages, rendered without any third-party
resource or script: one inline stylesheet, allowed by its hash in the CSP."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any

from durable_graph.api.approval_links import Page
from durable_graph.api.models import DecisionView
from durable_graph.clock import parse_iso
from durable_graph.signoff import SignOff

_BUTTON_CLASS = {"approve": "approve", "reject": "reject"}


@cache
def _read(name: str) -> str:
    return resources.files("durable_graph.api").joinpath("templates", name).read_text("utf-8")


@cache
def _style() -> str:
    return _read("style.css").strip()


@cache
def security_headers() -> dict[str, str]:
    """Headers of every approval response: never cached, never framed, no referrer leaks the
    token, and nothing but our own inline stylesheet may load."""
    style_hash = base64.b64encode(hashlib.sha256(_style().encode()).digest()).decode()
    return {
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{style_hash}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
    }


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _field(name: str, value: Any) -> str:
    if isinstance(value, str) and ("\n" in value or len(value) > 80):
        body = f"<pre>{escape(value)}</pre>"
    elif isinstance(value, str | int | float | bool):
        body = f"<p>{escape(str(value))}</p>"
    else:
        body = f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"
    return f'<div class="field"><h3>{escape(_label(name))}</h3>{body}</div>'


def _when(text: str) -> str:
    try:
        moment = parse_iso(text)
    except ValueError:
        return escape(text)
    return escape(moment.strftime("%d %b %Y, %H:%M UTC"))


def _decided(decision: DecisionView) -> str:
    tone = "ok" if decision.decision == "approve" else "no"
    comment = f"<p>Comment: {escape(decision.comment)}</p>" if decision.comment else ""
    return (
        f'<div class="notice {tone}"><p><strong>Already decided: '
        f"{escape(str(decision.decision))}</strong> by {escape(decision.decided_by)} on "
        f"{_when(decision.decided_at)}.</p>{comment}</div>"
    )


def approval_page(page: Page) -> str:
    claims = page.ticket.claims
    fields = "\n".join(_field(n, v) for n, v in page.fields)
    if page.interrupt_payload is not None:
        fields += _field("request", page.interrupt_payload)
    if page.decision is not None:
        decision = _decided(page.decision)
    else:
        decision = _so_far(page.approvals)
        buttons = "".join(
            f'<button type="submit" name="decision" value="{escape(d)}" '
            f'class="{_BUTTON_CLASS.get(d, "other")}">{escape(d.capitalize())}</button>'
            for d in page.decisions
        )
        decision += (
            '<form method="post" class="decide">'
            '<label for="comment">Comment (optional)</label>'
            '<textarea id="comment" name="comment" rows="3" maxlength="2000"></textarea>'
            f'<div class="buttons">{buttons}</div></form>'
        )
    expires = datetime.fromisoformat(page.expires_at.replace("Z", "+00:00"))
    return Template(_read("approval.html")).substitute(
        style=_style(),
        node=escape(claims.node),
        thread_id=escape(claims.tid),
        step=claims.step,
        graph=escape(page.graph),
        expires_at=escape(page.expires_at),
        expires_human=escape(expires.strftime("%d %b %Y, %H:%M UTC")),
        fields=fields or "<p>(no state to show)</p>",
        decision=decision,
    )


def _so_far(approvals: dict[str, Any] | None) -> str:
    """Who approved so far, under a rule that needs several approvers."""
    if not approvals or not approvals.get("approvals"):
        return ""
    names = ", ".join(escape(str(a["actor"]["id"])) for a in approvals["approvals"])
    done, required = len(approvals["approvals"]), int(approvals.get("required", 1))
    return (
        f'<div class="notice"><p>Approved so far by {names} ({done} of {required}). '
        "A different person must approve; the same person counts once.</p></div>"
    )


def approvals_block(approvals: dict[str, Any] | None) -> str:
    """Who decided a step under an approval rule (`approval_record.approvals_of`), for the
    explorer's step card: each approver, how their identity was established, the route."""
    if not approvals or not approvals.get("approvals"):
        return ""
    items = "".join(
        f"<li>{escape(str(a.get('decision', 'approve')))} by "
        f"<code>{escape(str(a['actor']['kind']))}:{escape(str(a['actor']['id']))}</code> "
        f"({escape(str(a.get('method') or 'identity not recorded'))}, via "
        f"{escape(str(a.get('via') or '-'))}) at {escape(str(a.get('at', '')))}</li>"
        for a in approvals["approvals"]
    )
    where = (
        "hashed with this step"
        if approvals.get("chained", True)
        else "all but the step's actor from the store's approvals# record, outside the chain"
    )
    return (
        f'<div id="approvals"><p class="small">Approvals ({len(approvals["approvals"])} of '
        f"{int(approvals.get('required', 1))} required; {where}):</p><ul>{items}</ul></div>"
    )


def result_page(
    decision: DecisionView, thread_status: str, replayed: bool, *, pending: SignOff | None = None
) -> str:
    verb = {"approve": "Approved", "reject": "Rejected"}.get(str(decision.decision))
    title = verb or f"Decision recorded: {decision.decision}"
    if pending is not None:
        done = len(pending.approvals)
        title = f"Approval recorded ({done} of {pending.required})"
        message = (
            f"Thread <code>{escape(decision.thread_id)}</code> waits for "
            f"{pending.required - done} more approver(s); the same person counts once."
        )
        details = f'<p class="small">Recorded as {escape(decision.decided_by)}.</p>'
        return message_page(title, message, tone="ok", details=details)
    again = " (this link had already decided; nothing changed)" if replayed else ""
    message = (
        f"{escape(title)}{escape(again)}. Thread <code>{escape(decision.thread_id)}</code> is "
        f"now {escape(thread_status)}."
    )
    details = f"<p>Comment: {escape(decision.comment)}</p>" if decision.comment else ""
    details += (
        f'<p class="small">Recorded as {escape(decision.decided_by)} on '
        f"{_when(decision.decided_at)}.</p>"
    )
    tone = "ok" if decision.decision == "approve" else "no"
    return message_page(title, message, tone=tone, details=details)


def message_page(title: str, message_html: str, *, tone: str = "", details: str = "") -> str:
    """A short page; `message_html` must already be escaped."""
    return Template(_read("message.html")).substitute(
        style=_style(),
        title=escape(title),
        message=message_html,
        tone=tone,
        details=details,
    )


def error_page(status: int, code: str, message: str) -> str:
    titles = {404: "Link not valid", 410: "Link no longer valid", 409: "Already decided"}
    return message_page(
        titles.get(status, "Cannot complete this request"),
        escape(message),
        tone="no",
        details=f'<p class="small">{status} &middot; {escape(code)}</p>',
    )
