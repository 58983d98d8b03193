"""A record's row and hash as `docs/record-format.md` defines them, written the slow, plain way
(pydantic's `model_dump` and RFC 8785), which the format was defined with: the reference any
faster writer is held to.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint


def reference_row(record: Checkpoint) -> str:
    """The stored row as the format defines it: the stored form's `model_dump` in JSON mode,
    defaults left out, its format written, a format-2 parent that is the previous step left
    out."""
    stored = record.stored()
    doc = stored.model_dump(mode="json", exclude_defaults=True)
    doc["format"] = stored.format
    parent = stored.parent
    previous = (record.thread_id, record.step - 1, record.prev_hash)
    if (
        stored.format >= 2
        and stored.step > 0
        and parent is not None
        and (parent.thread_id, parent.step, parent.hash) == previous
    ):
        doc.pop("parent")
    return compact_json(doc)


def reference_body(record: Checkpoint) -> dict[str, Any]:
    """What the hash covers, as the format defines it (`docs/record-format.md` §4)."""
    if record.format == 1:
        fields = {
            "thread_id", "step", "parent", "source", "nodes", "values", "next", "route",
            "interrupt", "resume", "io", "status", "error", "graph", "created_at",
            "duration_ms", "attempt", "actor", "prev_hash",
        }  # fmt: skip
        body = record.model_dump(mode="json", include=fields)
        for task in body["next"]:
            task.pop("done_at", None)
        return body
    include = {
        "format", "thread_id", "step", "parent", "source", "nodes", "root", "route",
        "interrupt", "resume", "status", "error", "graph", "created_at", "duration_ms",
        "attempt", "actor", "prev_hash", "next_ref", "io_ref",
    }  # fmt: skip
    if record.next_ref is None:
        include.add("next")
    if record.io_ref is None:
        include.add("io")
    if record.signoff is not None:
        include.add("signoff")
    body = record.model_dump(mode="json", include=include)
    body["changes"] = {name: {"op": c.op, "d": c.d} for name, c in record.changes.items()}
    # A salted part is hashed by the sha256 of JCS({"s": salt, "v": the part as stored}).
    for task in body.get("next", ()):
        if "s" in task:
            task["arg"] = {"$d": salted(task.pop("s"), task["arg"])}
    for part, key in (("interrupt", "payload"), ("error", "message")):
        if body[part] is not None and "s" in body[part]:
            hashed = salted(body[part].pop("s"), body[part][key])
            body[part][key] = {"$d": hashed} if key == "payload" else "$d:" + hashed
    for io in body.get("io", ()):
        if "s" in io:
            io["response_sha256"] = salted(io.pop("s"), io["response"])
            io["response"] = None
    for task_id, salts in record.resume_s.items():
        values = body["resume"][task_id]
        body["resume"][task_id] = [
            {"$d": salted(salt, value)} if salt else value
            for salt, value in zip(salts, values, strict=True)
        ]
    return body


def salted(salt: str, value: Any) -> str:
    return hashlib.sha256(rfc8785.dumps({"s": salt, "v": value})).hexdigest()
