"""Offloading heavy values to the payload store, and bringing them back (DESIGN.md §5).

Any string above the threshold, at any depth of an io response (or of format-1 state), is
replaced by `{"$payload": {uri, sha256, size, content_type}}`. A value already offloaded at the
previous step is recognised by digest and its ref reused, so an unchanged payload is never
written again. An io response, interrupt payload or resume value too big to keep in a record
is replaced whole by `{"$payload": ref}` to a salted chunk (`sealing.py`, the chunk a state
change is): `hydrate` and `loaded` bring those back too.
"""

from __future__ import annotations

import json
from typing import Any

from durable_graph.canonical import sha256_hex
from durable_graph.checkpoint import PayloadRef
from durable_graph.ports.payload_store import PayloadStore

MARKER = "$payload"
DEFAULT_OFFLOAD_BYTES = 8 * 1024
CHUNK_CONTENT_TYPE = "application/vnd.durable-graph.chunk+json"


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and MARKER in value


def collect_refs(value: Any, into: dict[str, PayloadRef] | None = None) -> dict[str, PayloadRef]:
    """Every payload ref inside `value`, keyed by digest."""
    found = {} if into is None else into
    if is_ref(value):
        ref = PayloadRef.model_validate(value[MARKER])
        found[ref.sha256] = ref
    elif isinstance(value, dict):
        for item in value.values():
            collect_refs(item, found)
    elif isinstance(value, list):
        for item in value:
            collect_refs(item, found)
    return found


def offload(
    value: Any,
    store: PayloadStore,
    threshold: int,
    known: dict[str, PayloadRef] | None = None,
) -> Any:
    """Replace large strings by refs; `known` (digest → ref) avoids re-writing unchanged ones."""
    known = {} if known is None else known
    if isinstance(value, str):
        data = value.encode("utf-8")
        if len(data) <= threshold:
            return value
        digest = sha256_hex(data)
        ref = known.get(digest)
        if ref is None:
            ref = store.put(data, "text/plain; charset=utf-8")
            known[digest] = ref
        return {MARKER: ref.model_dump(mode="json")}
    if isinstance(value, dict) and not is_ref(value):
        return {k: offload(v, store, threshold, known) for k, v in value.items()}
    if isinstance(value, list):
        return [offload(v, store, threshold, known) for v in value]
    return value


def is_chunk(ref: PayloadRef) -> bool:
    """A ref to a salted chunk `{"s", "v"}` (sealed or not), not to a string's UTF-8."""
    return ref.content_type.split(";", 1)[0] == CHUNK_CONTENT_TYPE


def _fetched(ref: PayloadRef, store: PayloadStore) -> Any:
    data = store.get(ref)
    if is_chunk(ref):
        doc = json.loads(data)
        return doc.get("v") if isinstance(doc, dict) else None
    return data.decode("utf-8")


def loaded(value: Any, store: PayloadStore) -> Any:
    """An interrupt payload, resume value or io response as it was written: `value` itself,
    or, where the record keeps it whole in a chunk (`{"$payload": ref}` to one), the chunk's
    value (its bytes checked against the ref by the store). Long strings offloaded inside a
    response stay refs (`hydrate` fetches them)."""
    if is_ref(value):
        ref = PayloadRef.model_validate(value[MARKER])
        if is_chunk(ref):
            return _fetched(ref, store)
    return value


def hydrate(value: Any, store: PayloadStore) -> Any:
    """Inverse of `offload`: fetch (and digest-check) every ref."""
    if is_ref(value):
        return _fetched(PayloadRef.model_validate(value[MARKER]), store)
    if isinstance(value, dict):
        return {k: hydrate(v, store) for k, v in value.items()}
    if isinstance(value, list):
        return [hydrate(v, store) for v in value]
    return value
