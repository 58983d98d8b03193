"""The explorer's HTML pages but one thread's (`explorer_thread_page.py`): the thread list,
a diff, a verification, the approvals inbox and sign-in; server-rendered, every value escaped,
no inline script or style (`explorer_html.py` has the parts they share)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from durable_graph.api.explorer_html import (
    age,
    as_json,
    badge,
    key_ids,
    layout,
    thread_link,
    thread_url,
    verdict,
)
from durable_graph.checkpoint import ThreadRecord
from durable_graph.ledger_report import VerifyReport
from durable_graph.listing import STATUSES, ThreadPage


def _last(record: ThreadRecord) -> str:
    where = ""
    if record.interrupt is not None:
        where = f" · waiting at <code>{escape(record.interrupt.node)}</code>"
    elif record.error is not None:
        where = f" · failed in <code>{escape(record.error.node)}</code>"
    return f"{record.head_step}{where}"


# ------------------------------------------------------------------------------ threads


def threads_page(page: ThreadPage, *, status: str, query: str, now: datetime) -> str:
    options = "".join(
        f'<option value="{value}"{" selected" if value == status else ""}>{label}</option>'
        for value, label in (("", "any status"), *((s, s) for s in STATUSES))
    )
    rows = "".join(
        "<tr>"
        f"<td>{thread_link(t.thread_id)}</td>"
        f"<td>{badge(t.status)}</td><td><code>{escape(t.graph.name)}</code></td>"
        f'<td class="num">{_last(t)}</td><td>{age(t.updated_at, now)}</td></tr>'
        for t in page.threads
    )
    more = ""
    if page.cursor:
        nxt = urlencode({"status": status, "q": query, "cursor": page.cursor})
        more = f'<a class="button secondary" href="/explorer?{escape(nxt)}">Next page →</a>'
    body = f"""<h1>Threads</h1>
<form class="inline" method="get" action="/explorer" role="search">
<label>Status<select name="status">{options}</select></label>
<label>Thread id (or its start)<input type="search" name="q" value="{escape(query)}"></label>
<button type="submit">Filter</button></form>
<table id="threads"><thead><tr><th>Thread</th><th>Status</th><th>Graph</th>
<th class="num">Last step</th><th>Updated</th></tr></thead><tbody>
{rows or '<tr><td colspan="5" class="muted">No threads match.</td></tr>'}</tbody></table>
<div class="pager"><a class="button secondary" href="/explorer">First page</a>{more}</div>"""
    return layout("Threads", body, "threads")


# ------------------------------------------------------------------------------ diff, verify


def _change(change: dict[str, Any]) -> str:
    kind = str(change["change"])
    detail = {k: v for k, v in change.items() if k not in ("field", "change")}
    return (
        f"<tr><td><code>{escape(str(change['field']))}</code></td>"
        f'<td class="change-{escape(kind)}">{escape(kind)}</td>'
        f"<td><pre>{as_json(detail)}</pre></td></tr>"
    )


def diff_page(tid: str, doc: dict[str, Any]) -> str:
    a, b = doc["a"], doc["b"]
    rows = "".join(_change(c) for c in doc["changes"])
    unchanged = ", ".join(escape(u) for u in doc["unchanged"]) or "none"
    body = f"""<p class="small"><a href="/explorer">Threads</a> /
<a href="{escape(thread_url(tid))}"><code>{escape(tid)}</code></a> /</p>
<h1>Diff: step {a["step"]} → step {b["step"]}</h1>
<p class="small">The same comparison as <code>durable-graph diff {escape(tid)} {a["step"]}
{b["step"]}</code>.</p>
<table id="diff"><thead><tr><th>Field</th><th>Change</th><th>Values</th></tr></thead>
<tbody>{rows or '<tr><td colspan="3" class="muted">No field changed.</td></tr>'}</tbody></table>
<p class="small">Unchanged: {unchanged}</p>"""
    return layout(f"Diff {a['step']} → {b['step']}", body, "threads")


def verify_page(tid: str, report: VerifyReport) -> str:
    problems = "".join(
        f'<tr><td class="num"><a href="{escape(thread_url(tid, step=int(str(p["step"]))))}">'
        f"{escape(str(p['step']))}</a></td><td>{escape(str(p['check']))}</td>"
        f"<td>{escape(str(p['reason']))}</td></tr>"
        for p in report.problems
    )
    table = (
        '<table id="problems"><thead><tr><th class="num">Step</th><th>Check</th><th>Reason</th>'
        f"</tr></thead><tbody>{problems}</tbody></table>"
        if problems
        else ""
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    signed = ", ".join(str(s) for s in report.signed_steps) or "none"
    body = f"""<p class="small"><a href="/explorer">Threads</a> /
<a href="{escape(thread_url(tid))}"><code>{escape(tid)}</code></a> /</p>
<h1>Verification of <code>{escape(tid)}</code></h1>
{verdict(report, tid, report.checked)}
<section class="card"><dl class="meta">
<dt>Records checked</dt><dd>{report.checked}</dd>
<dt>Checks</dt><dd>{escape(", ".join(report.checks))}</dd>
<dt>Signed heads</dt><dd id="signed">steps {escape(signed)}</dd>
<dt>Key fingerprint</dt><dd id="key">{key_ids(report)}</dd>
</dl>{f"<ul>{notes}</ul>" if notes else ""}</section>
{table}
<p class="small">The same checks as <code>durable-graph verify {escape(tid)}</code>; the audit
bundle verifies them again on another machine (<code>durable-graph verify-bundle</code>).</p>"""
    return layout(f"Verify {tid}", body, "threads")


# ------------------------------------------------------------------------------ inbox, login


def inbox_page(page: ThreadPage, *, now: datetime) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{thread_link(t.thread_id)}</td>"
        f"<td><code>{escape(t.graph.name)}</code></td>"
        f"<td><code>{escape(t.interrupt.node if t.interrupt else '-')}</code></td>"
        f'<td class="num">{t.head_step}</td><td>{age(t.updated_at, now)}</td>'
        f'<td><form method="post" action="{escape(thread_url(t.thread_id, "/approval"))}">'
        '<button type="submit">Open approval page</button></form></td></tr>'
        for t in page.threads
    )
    more = ""
    if page.cursor:
        more = (
            '<a class="button secondary" '
            f'href="/explorer/approvals?{escape(urlencode({"cursor": page.cursor}))}">'
            "Next page →</a>"
        )
    body = f"""<h1>Approvals inbox</h1>
<p class="small">Every thread waiting for a person, the longest wait first. Opening an approval
page issues a fresh single-use link for the step (the ledger is unchanged until someone decides).
</p>
<table id="inbox"><thead><tr><th>Thread</th><th>Graph</th><th>Waiting at</th>
<th class="num">Step</th><th>Waiting since</th><th></th></tr></thead><tbody>
{rows or '<tr><td colspan="6" class="muted">Nobody is waited for.</td></tr>'}</tbody></table>
<div class="pager">{more}</div>"""
    return layout("Approvals inbox", body, "inbox")


def login_page(message: str, *, method: str, retry: str = "/explorer/login") -> str:
    if method == "oidc":
        form = (
            f'<p><a class="button" href="{escape(retry)}">Sign in</a></p>'
            '<p class="small">You sign in on the deployment\'s Amazon Cognito user pool '
            "(password and authenticator app). Programs send an ID token as "
            "<code>Authorization: Bearer</code> instead.</p>"
        )
    else:
        form = """<form method="post" action="/explorer/login" class="inline">
<label>Session token<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Open the explorer</button></form>
<p class="small">The token is printed once by <code>durable-graph serve</code> (with a link
that signs you in). Programs send the API key as <code>x-api-key</code> instead.</p>"""
    body = f"<h1>Sign in</h1><p>{escape(message)}</p>{form}"
    return layout("Sign in", body).replace("<body>", '<body class="login">', 1)


__all__ = [
    "diff_page",
    "inbox_page",
    "login_page",
    "threads_page",
    "verify_page",
]
