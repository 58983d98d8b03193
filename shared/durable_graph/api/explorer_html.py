"""What every explorer page shares: security headers, the layout, links, and small pieces
(a status badge, an age, a verification verdict); every value escaped.

Pages load one stylesheet from this origin; the graph is drawn in a frame of its own
(`explorer_thread_page.graph_frame`) by the vendored Mermaid, the only page whose policy admits
the inline styles Mermaid writes into its SVG. The pages themselves keep `style-src 'self'` and
`script-src 'none'`.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote, urlencode

from durable_graph.clock import parse_iso
from durable_graph.ledger_report import VerifyReport

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The graph frame: Mermaid's own script from this origin, and the inline styles it writes into
# the SVG it draws. The frame holds node names only, never state.
GRAPH_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def headers(csp: str = PAGE_CSP, *, framed: bool = False) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN" if framed else "DENY",
        "Content-Security-Policy": csp,
    }


@cache
def template(name: str) -> Template:
    text = resources.files("durable_graph.api").joinpath("templates", name).read_text("utf-8")
    return Template(text)


def layout(title: str, body: str, section: str = "") -> str:
    return template("explorer.html").substitute(
        title=escape(title),
        body=body,
        threads_current=' aria-current="page"' if section == "threads" else "",
        inbox_current=' aria-current="page"' if section == "inbox" else "",
    )


def thread_url(thread_id: str, suffix: str = "", **query: Any) -> str:
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    url = f"/explorer/threads/{quote(thread_id, safe='')}{suffix}"
    return url + (f"?{urlencode(params)}" if params else "")


def badge(status: str) -> str:
    return f'<span class="badge status-{escape(status)}">{escape(status)}</span>'


def age(text: str, now: datetime) -> str:
    try:
        seconds = max(0, int((now - parse_iso(text)).total_seconds()))
    except ValueError:
        return escape(text)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f'<time datetime="{escape(text)}">{seconds // size} {unit} ago</time>'
    return f'<time datetime="{escape(text)}">{seconds} s ago</time>'


def thread_link(thread_id: str) -> str:
    return f'<a href="{escape(thread_url(thread_id))}"><code>{escape(thread_id)}</code></a>'


def as_json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def verdict(report: VerifyReport | None, tid: str, steps: int) -> str:
    if report is None:
        return (
            f"<p>This thread has {steps} steps: verifying reads every record. "
            f'<a href="{escape(thread_url(tid, "/verify"))}">Verify now</a></p>'
        )
    if report.ok:
        signed = ", ".join(str(s) for s in report.signed_steps) or "none"
        return (
            f'<div class="verdict ok" id="verdict"><strong>Verified</strong>: {report.checked} '
            f"records, chain intact. Signed heads at steps {escape(signed)}; key "
            f"{key_ids(report)}.</div>"
        )
    step = report.first_bad_step
    link = escape(thread_url(tid, step=step)) if step is not None else "#"
    return (
        f'<div class="verdict no" id="verdict"><strong>Verification failed at '
        f'<a href="{link}">step {step}</a></strong> ({escape(str(report.check))}): '
        f"{escape(str(report.reason))}</div>"
    )


def key_ids(report: VerifyReport) -> str:
    if not report.key_ids:
        return "(no trusted key: signatures not checked)"
    return ", ".join(f"<code>{escape(k)}</code>" for k in report.key_ids)


__all__ = [
    "GRAPH_CSP",
    "PAGE_CSP",
    "age",
    "as_json",
    "badge",
    "headers",
    "key_ids",
    "layout",
    "template",
    "thread_link",
    "thread_url",
    "verdict",
]
