"""The explorer's HTML: server-rendered, every value escaped, no inline script or style.

Pages load one stylesheet from this origin; the graph is drawn in a frame of its own
(`graph_frame`) by the vendored Mermaid, the only page whose policy admits the inline styles
Mermaid writes into its SVG. The pages themselves keep `style-src 'self'` and `script-src 'none'`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote, urlencode

from durable_graph.api.explorer_read import Lineage, Timeline
from durable_graph.api.pages import approvals_block
from durable_graph.checkpoint import Checkpoint, IoRecord, ThreadRecord
from durable_graph.clock import parse_iso
from durable_graph.ledger_report import VerifyReport
from durable_graph.listing import STATUSES, ThreadPage

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
def _template(name: str) -> Template:
    text = resources.files("durable_graph.api").joinpath("templates", name).read_text("utf-8")
    return Template(text)


def _layout(title: str, body: str, section: str = "") -> str:
    return _template("explorer.html").substitute(
        title=escape(title),
        body=body,
        threads_current=' aria-current="page"' if section == "threads" else "",
        inbox_current=' aria-current="page"' if section == "inbox" else "",
    )


def thread_url(thread_id: str, suffix: str = "", **query: Any) -> str:
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    url = f"/explorer/threads/{quote(thread_id, safe='')}{suffix}"
    return url + (f"?{urlencode(params)}" if params else "")


def _badge(status: str) -> str:
    return f'<span class="badge status-{escape(status)}">{escape(status)}</span>'


def _age(text: str, now: datetime) -> str:
    try:
        seconds = max(0, int((now - parse_iso(text)).total_seconds()))
    except ValueError:
        return escape(text)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f'<time datetime="{escape(text)}">{seconds // size} {unit} ago</time>'
    return f'<time datetime="{escape(text)}">{seconds} s ago</time>'


def _thread_link(thread_id: str) -> str:
    return f'<a href="{escape(thread_url(thread_id))}"><code>{escape(thread_id)}</code></a>'


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


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
        f"<td>{_thread_link(t.thread_id)}</td>"
        f"<td>{_badge(t.status)}</td><td><code>{escape(t.graph.name)}</code></td>"
        f'<td class="num">{_last(t)}</td><td>{_age(t.updated_at, now)}</td></tr>'
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
    return _layout("Threads", body, "threads")


# ------------------------------------------------------------------------------ a thread


def _clock(text: str) -> str:
    """`2026-11-30 08:39:56.002` with the full timestamp as the element's datetime."""
    short = text.replace("T", " ").rstrip("Z")[:23]
    return f'<time datetime="{escape(text)}">{escape(short)}</time>'


def _timeline(tid: str, line: Timeline, selected: int, before: int | None, bad: int | None) -> str:
    rows = []
    for r in line.rows:
        mark = '<span class="signed" title="signed head">✔ signed</span>' if r.signed else ""
        classes = [c for c, on in (("selected", r.step == selected), ("bad", r.step == bad)) if on]
        css = f' class="{" ".join(classes)}"' if classes else ""
        nodes = ", ".join(r.nodes) or f"({r.source})"
        error = f'<div class="small status-failed">{escape(r.error)}</div>' if r.error else ""
        rows.append(
            f'<tr id="step-{r.step}"{css}><td class="num">'
            f'<a href="{escape(thread_url(tid, step=r.step, before=before))}">{r.step}</a></td>'
            f"<td><code>{escape(nodes)}</code>{error}</td><td>{escape(r.actor)}</td>"
            f'<td class="small">{_clock(r.created_at)}</td>'
            f'<td class="num">{r.duration_ms:.1f} ms</td>'
            f'<td class="small">{"<br>".join(escape(x) for x in r.routes)}</td>'
            f"<td>{_badge(r.status)}</td><td>{mark}</td>"
            f'<td class="num">{r.io or ""}</td></tr>'
        )
    pager = []
    if line.newer is not None:
        pager.append(f'<a href="{escape(thread_url(tid, before=line.newer))}">← Newer steps</a>')
    if line.older is not None:
        pager.append(f'<a href="{escape(thread_url(tid, before=line.older))}">Older steps →</a>')
    return f"""<table id="timeline"><thead><tr><th class="num">Step</th><th>Node</th>
<th>Actor</th><th>Time</th><th class="num">Duration</th><th>Route taken</th><th>Status</th>
<th>Signature</th><th class="num">Inputs</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<div class="pager">{" ".join(pager)}</div>"""


def _io(io: Sequence[tuple[IoRecord, Any]]) -> str:
    if not io:
        return '<p class="muted">No external inputs were recorded at this step.</p>'
    items = "".join(
        f'<h3><code>{escape(r.name)}</code> <span class="small">({escape(r.kind)}, task '
        f"{escape(r.task_id)})</span></h3>"
        f'<p class="small mono">request sha256 {escape(r.request_sha256 or "-")} · response '
        f"sha256 {escape(r.response_sha256)}</p><pre>{_json(response)}</pre>"
        for r, response in io
    )
    return f'<div id="io">{items}</div>'


def _verdict(report: VerifyReport | None, tid: str, steps: int) -> str:
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
            f"{_keys(report)}.</div>"
        )
    step = report.first_bad_step
    link = escape(thread_url(tid, step=step)) if step is not None else "#"
    return (
        f'<div class="verdict no" id="verdict"><strong>Verification failed at '
        f'<a href="{link}">step {step}</a></strong> ({escape(str(report.check))}): '
        f"{escape(str(report.reason))}</div>"
    )


def _keys(report: VerifyReport) -> str:
    if not report.key_ids:
        return "(no trusted key: signatures not checked)"
    return ", ".join(f"<code>{escape(k)}</code>" for k in report.key_ids)


def _lineage(lineage: Lineage) -> str:
    parts = []
    for tid, step in lineage.ancestors:
        link = escape(thread_url(tid, step=step))
        parts.append(f'forked from <a href="{link}"><code>{escape(tid)}</code> step {step}</a>')
    forks = ", ".join(
        f'<a href="{escape(thread_url(t))}"><code>{escape(t)}</code></a> (from step {s})'
        for t, s in lineage.forks
    )
    if forks:
        parts.append(f"forks: {forks}")
    if lineage.more:
        parts.append(f"and up to {lineage.more} more (the first {len(lineage.forks)} shown)")
    return "; ".join(parts) or "no forks, not a fork"


def thread_page(
    *,
    thread: ThreadRecord | None,
    head: Checkpoint,
    line: Timeline,
    record: Checkpoint,
    values: dict[str, Any],
    io: Sequence[tuple[IoRecord, Any]],
    report: VerifyReport | None,
    lineage: Lineage,
    before: int | None,
    derived: bool,
    approvals: dict[str, Any] | None = None,
) -> str:
    tid = head.thread_id
    step = record.step
    graph_src = thread_url(tid, "/graph", before=before)
    derived_note = (
        '<p class="small">Drawn from the routes this thread recorded: the graph\'s shape was '
        "never published to this store (it is when the API loads the graph).</p>"
        if derived
        else ""
    )
    a_default = max(0, step - 1)
    body = f"""<p class="small"><a href="/explorer">Threads</a> /</p>
<h1><code>{escape(tid)}</code> {_badge(head.status)}</h1>
<section class="card"><dl class="meta">
<dt>Graph</dt><dd><code>{escape(head.graph.name)}</code> version
<code>{escape(head.graph.version)}</code></dd>
<dt>Head</dt><dd>step {head.step}, {escape(head.created_at)}</dd>
<dt>Started</dt><dd>{escape(thread.created_at if thread else "-")}</dd>
<dt>Lineage</dt><dd id="lineage">{_lineage(lineage)}</dd>
<dt>Audit</dt><dd><a class="button secondary" id="bundle"
href="{escape(thread_url(tid, "/bundle"))}">Download audit bundle</a>
<a class="button secondary" href="{escape(thread_url(tid, "/verify"))}">Verify</a></dd>
</dl></section>
{_verdict(report, tid, head.step + 1)}
<h2>Graph</h2>
<iframe class="graph" title="graph of {escape(head.graph.name)}" src="{escape(graph_src)}"></iframe>
{derived_note}
<h2>Timeline</h2>
{_timeline(tid, line, step, before, report.first_bad_step if report else None)}
<h2>Compare two steps</h2>
<form class="inline" id="diff-form" method="get" action="{escape(thread_url(tid, "/diff"))}">
<label>From step<input type="number" name="a" min="0" max="{head.step}" value="{a_default}"></label>
<label>To step<input type="number" name="b" min="0" max="{head.step}" value="{step}"></label>
<button type="submit">Show diff</button></form>
<div class="grid">
<section class="card" id="state"><h2>State at step {step}</h2>
<p class="small">{escape(record.source)} by {escape(record.actor.kind)}:{escape(record.actor.id)}
· {_badge(record.status)} · hash <code>{escape(record.hash[:16])}…</code></p>
{approvals_block(approvals)}
<pre>{_json(values)}</pre></section>
<section class="card"><h2>Recorded external inputs at step {step}</h2>{_io(io)}</section>
</div>"""
    return _layout(f"Thread {tid}", body, "threads")


def graph_frame(name: str, text: str) -> str:
    return _template("explorer_graph.html").substitute(name=escape(name), text=escape(text))


# ------------------------------------------------------------------------------ diff, verify


def _change(change: dict[str, Any]) -> str:
    kind = str(change["change"])
    detail = {k: v for k, v in change.items() if k not in ("field", "change")}
    return (
        f"<tr><td><code>{escape(str(change['field']))}</code></td>"
        f'<td class="change-{escape(kind)}">{escape(kind)}</td>'
        f"<td><pre>{_json(detail)}</pre></td></tr>"
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
    return _layout(f"Diff {a['step']} → {b['step']}", body, "threads")


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
{_verdict(report, tid, report.checked)}
<section class="card"><dl class="meta">
<dt>Records checked</dt><dd>{report.checked}</dd>
<dt>Checks</dt><dd>{escape(", ".join(report.checks))}</dd>
<dt>Signed heads</dt><dd id="signed">steps {escape(signed)}</dd>
<dt>Key fingerprint</dt><dd id="key">{_keys(report)}</dd>
</dl>{f"<ul>{notes}</ul>" if notes else ""}</section>
{table}
<p class="small">The same checks as <code>durable-graph verify {escape(tid)}</code>; the audit
bundle verifies them again on another machine (<code>durable-graph verify-bundle</code>).</p>"""
    return _layout(f"Verify {tid}", body, "threads")


# ------------------------------------------------------------------------------ inbox, login


def inbox_page(page: ThreadPage, *, now: datetime) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{_thread_link(t.thread_id)}</td>"
        f"<td><code>{escape(t.graph.name)}</code></td>"
        f"<td><code>{escape(t.interrupt.node if t.interrupt else '-')}</code></td>"
        f'<td class="num">{t.head_step}</td><td>{_age(t.updated_at, now)}</td>'
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
    return _layout("Approvals inbox", body, "inbox")


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
    return _layout("Sign in", body).replace("<body>", '<body class="login">', 1)


__all__ = [
    "GRAPH_CSP",
    "PAGE_CSP",
    "diff_page",
    "graph_frame",
    "headers",
    "inbox_page",
    "login_page",
    "thread_page",
    "thread_url",
    "threads_page",
    "verify_page",
]
