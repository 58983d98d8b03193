"""A one-node graph that stores a document with `ctx.save` and can be killed right after, for the
payload collector's SIGKILL test (`test_gc_crash.py`).

Module-level so worker processes import it by path (`tests.e2e.gc_graphs:draft_graph`).

The node stands for an LLM call whose answer differs at each run: it saves a ~100 KB draft
naming the process (`ctx.save`: put in the payload store at once), writes the draft's digest to
a marker file (`saved-<pid>`: the test kills the process when it appears), sleeps, and only then
returns the draft's ref and a 20 KB summary (a chunk, put when the step is sealed). A process
killed while it sleeps has put an object no record will ever name.

Environment:
  DG_GC_DIR     folder of the marker
  DG_GC_SLEEP   seconds the node sleeps after its marker (default 0)
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph


class Draft(BaseModel):
    draft: dict[str, Any] = {}
    summary: str = ""


def write(state: Draft, ctx: NodeContext) -> dict[str, Any]:
    text = f"draft written by process {os.getpid()} " * 2500
    data = text.encode()
    ref = ctx.save(data, "text/plain")
    folder = Path(os.environ["DG_GC_DIR"])
    (folder / f"saved-{os.getpid()}").write_text(hashlib.sha256(data).hexdigest())
    time.sleep(float(os.environ.get("DG_GC_SLEEP", "0")))
    return {"draft": ref.model_dump(mode="json"), "summary": text[:20_000]}


_builder = StateGraph(Draft)
_builder.add_node("write", write)
_builder.add_edge(START, "write")
_builder.add_edge("write", END)
draft_graph = _builder.compile(name="tests.e2e.gc_graphs:draft_graph")
