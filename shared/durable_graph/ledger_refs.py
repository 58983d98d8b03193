"""Which payloads a record refers to: the objects `verify` reads and a bundle carries."""

from __future__ import annotations

from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.payloads import collect_refs, is_ref


def record_refs(record: Checkpoint) -> dict[str, PayloadRef]:
    """Every payload a record refers to, by digest (a format-2 record's chunks are checked
    under `state`)."""
    refs = collect_refs(record.values) if record.format < 2 else {}
    for io in record.io:
        collect_refs(io.response, refs)
    # A big interrupt payload, resume value or task argument is a whole `{"$payload": ref}`
    # (`part_chunks.chunked_part`).
    parts = [v for values in record.resume.values() for v in values]
    parts += [task.arg for task in record.next if task.arg is not None]
    if record.interrupt is not None:
        parts.append(record.interrupt.payload)
    for part in parts:
        if is_ref(part):
            collect_refs(part, refs)
    for ref in (record.next_ref, record.io_ref):
        if ref is not None:
            refs[ref.sha256] = ref
    return refs


def chunk_refs(record: Checkpoint) -> dict[str, PayloadRef]:
    return {c.ref.sha256: c.ref for c in record.changes.values() if c.ref is not None}


__all__ = ["chunk_refs", "record_refs"]
