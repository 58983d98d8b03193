"""The explorer's page of one thread: its metadata, verdict, graph, timeline, the state at a
step and the external inputs recorded there; and the frame the graph is drawn in."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from durable_graph.api.explorer_html import (
    as_json,
    badge,
    layout,
    template,
    thread_url,
    verdict,
)
from durable_graph.api.explorer_read import Lineage, Timeline
from durable_graph.api.pages import approvals_block
from durable_graph.checkpoint import Checkpoint, IoRecord, ThreadRecord
from durable_graph.ledger_report import VerifyReport


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
            f"<td>{badge(r.status)}</td><td>{mark}</td>"
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
        f"sha256 {escape(r.response_sha256)}</p><pre>{as_json(response)}</pre>"
        for r, response in io
    )
    return f'<div id="io">{items}</div>'


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
<h1><code>{escape(tid)}</code> {badge(head.status)}</h1>
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
{verdict(report, tid, head.step + 1)}
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
· {badge(record.status)} · hash <code>{escape(record.hash[:16])}…</code></p>
{approvals_block(approvals)}
<pre>{as_json(values)}</pre></section>
<section class="card"><h2>Recorded external inputs at step {step}</h2>{_io(io)}</section>
</div>"""
    return layout(f"Thread {tid}", body, "threads")


def graph_frame(name: str, text: str) -> str:
    return template("explorer_graph.html").substitute(name=escape(name), text=escape(text))


__all__ = ["graph_frame", "thread_page"]
