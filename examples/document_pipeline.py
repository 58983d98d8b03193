"""A document pipeline started by an upload: fan out one task per document, fan back in.

    extract → classify (one task per document, in parallel, via Send) → aggregate

On AWS, uploading a bundle to the uploads bucket starts a run (`functions/s3_trigger`): the
`upload` field is a digest-pinned ref to the uploaded object. `extract` splits the bundle and
stores each document's text in the payload store (S3), keeping only refs in the state; every
`classify` task receives one ref, reads its document, and returns a label and a short summary;
`aggregate` runs once, after the last of them, and writes the report. Checkpoints hold pointers
and small results only — the heavy text stays in S3 (or in the payload folder when embedded).

Bundle format (JSON): `{"documents": [{"id": "inv-1", "text": "..."}, ...]}`.

Run it on the embedded backend:

    python -m examples.document_pipeline bundle.json      # or with no argument: a sample bundle
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, PayloadRef, Send, StateGraph


class DocumentRef(BaseModel):
    id: str
    ref: PayloadRef
    chars: int


class DocumentResult(BaseModel):
    id: str
    label: str
    summary: str
    words: int


class PipelineState(BaseModel):
    upload: PayloadRef | None = None
    documents: list[DocumentRef] = Field(default_factory=list)
    results: Annotated[list[DocumentResult], operator.add] = Field(default_factory=list)
    totals: dict[str, int] = Field(default_factory=dict)
    report: str = ""


# A deterministic stand-in for a classifier model (so reruns and replays agree).
LABELS: dict[str, tuple[str, ...]] = {
    "invoice": ("invoice", "amount due", "payment", "vat"),
    "contract": ("agreement", "party", "term", "clause"),
    "complaint": ("complaint", "refund", "disappointed", "broken"),
}


def classify_text(text: str) -> str:
    lowered = text.lower()
    scores = {label: sum(lowered.count(word) for word in words) for label, words in LABELS.items()}
    best = max(scores, key=lambda label: (scores[label], label))
    return best if scores[best] > 0 else "other"


def summarise_text(text: str, limit: int = 160) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def extract(state: PipelineState, ctx: NodeContext) -> dict[str, Any]:
    if state.upload is None:
        raise ValueError("no upload to extract: start the run with {'upload': <payload ref>}")
    bundle = json.loads(ctx.load(state.upload))
    documents = []
    for index, doc in enumerate(bundle["documents"]):
        text = str(doc["text"])
        ref = ctx.save(text.encode("utf-8"), "text/plain; charset=utf-8")
        documents.append(
            {
                "id": str(doc.get("id") or index),
                "ref": ref.model_dump(mode="json"),
                "chars": len(text),
            }
        )
    return {"documents": documents}


def fan_out(state: PipelineState) -> list[Send] | list[str]:
    """One `classify` task per document; straight to `aggregate` for an empty bundle."""
    sends = [
        Send("classify", {"id": d.id, "ref": d.ref.model_dump(mode="json")})
        for d in state.documents
    ]
    return sends or ["aggregate"]


def classify(task: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    text = ctx.load(task["ref"]).decode("utf-8")
    result = DocumentResult(
        id=task["id"],
        label=classify_text(text),
        summary=summarise_text(text),
        words=len(text.split()),
    )
    return {"results": [result.model_dump(mode="json")]}


def aggregate(state: PipelineState) -> dict[str, Any]:
    ordered = sorted(state.results, key=lambda r: r.id)
    totals = Counter(r.label for r in ordered)
    lines = [f"{r.id}: [{r.label}] {r.summary} ({r.words} words)" for r in ordered]
    return {"totals": dict(sorted(totals.items())), "report": "\n".join(lines)}


builder = StateGraph(PipelineState)
builder.add_node("extract", extract)
builder.add_node("classify", classify)
builder.add_node("aggregate", aggregate)
builder.add_edge(START, "extract")
builder.add_conditional_edges("extract", fan_out)
builder.add_edge("classify", "aggregate")
builder.add_edge("aggregate", END)

graph = builder.compile(name="examples.document_pipeline:graph")


def sample_bundle(copies: int = 40) -> bytes:
    """Five documents of a few KB each (`copies` repeats the body text)."""
    bodies = {
        "inv-001": "Invoice 2024-117. Amount due: EUR 1,250 plus VAT. Payment within 30 days. ",
        "ctr-002": "Service agreement between the parties. The term is two years; clause 4. ",
        "cmp-003": "Formal complaint: the device arrived broken and I request a refund. ",
        "inv-004": "Invoice 2024-118 for consulting. Payment by bank transfer, amount due now. ",
        "memo-005": "Team offsite next Thursday; bring ideas for the roadmap discussion. ",
    }
    documents = [{"id": key, "text": body * copies} for key, body in bodies.items()]
    return json.dumps({"documents": documents}).encode("utf-8")


def run_local(data: bytes) -> dict[str, Any]:
    """Run one bundle on the embedded backend ($DURABLE_GRAPH_HOME) and return the state."""
    ref = graph.backend.payloads.put(data, "application/json")
    thread_id = "docs-" + hashlib.sha256(data).hexdigest()[:16]
    head = graph.backend.checkpoints.head_checkpoint(thread_id)
    if head is None:
        return graph.invoke({"upload": ref.model_dump(mode="json")}, thread_id=thread_id)
    return dict(graph.get_state(thread_id).values)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    data = Path(args[0]).read_bytes() if args else sample_bundle()
    values = run_local(data)
    print(values["report"])
    print(json.dumps(values["totals"], sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
