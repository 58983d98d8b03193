"""The graph that wrote `tests/fixtures/unsalted_parts_store`: a thread with every part a record
holds besides its state (task arguments, an interrupt payload, a resume value, io responses, an
error message), written by the release before salted parts (`salted_parts.py`), whose records
hash those parts as stored. `tests/ledger/test_salted_parts.py` reads and verifies it."""

from __future__ import annotations

from typing import Any

from durable_graph import NodeContext, Send
from tests.conformance.parts_graph import Case, parts_graph

MARK = "JANE-ROE-4471"


def fan_out(state: Case) -> list[Send]:
    return [Send("work", {"doc": f"{MARK} {n}"}) for n in ("a", "b")]


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    looked = ctx.record("lookup", lambda r: f"{MARK} looked up {r}", arg["doc"][-1])
    return {"done": [len(looked)]}


graph = parts_graph("tests.ledger.unsalted_parts:graph", Case, MARK, fan_out, work)
