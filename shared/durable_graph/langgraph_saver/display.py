"""Readable values for the ledger's reading commands (`show`, `status`, `diff`, the explorer) on
threads `DurableGraphSaver` wrote, whose values are sealed LangGraph serializer output.

A sealed value is opened with the thread's data key (from its manifest, in the same store) and
decoded *without running any code from the ledger*, as every read must (`reading.py`): JSON as
JSON, msgpack with `ormsgpack` when it is installed (it comes with LangGraph), and each object
LangGraph's serializer wrote as a class and its arguments (a message, a pydantic model, a
dataclass) as `{"$type": "module.Class", "value": arguments}`, never importing the class. What
cannot be decoded says why instead: an erased generation's key is destroyed (`delete_thread`,
`prune`), a pickled value is never unpickled, msgpack without `ormsgpack`.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
from collections.abc import Mapping
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import CorruptRecord, InvalidInput
from durable_graph.langgraph_saver import manifest
from durable_graph.langgraph_saver.cipher import ThreadCipher
from durable_graph.langgraph_saver.index import HEADER, WRITE_VALUES, field_channel
from durable_graph.langgraph_saver.names import GRAPH_NAME, LedgerName

# Optional: msgpack decoding needs ormsgpack (LangGraph's dependency, not ours).
_ormsgpack: Any = (
    importlib.import_module("ormsgpack") if importlib.util.find_spec("ormsgpack") else None
)
# LangGraph's msgpack extension codes (langgraph.checkpoint.serde.jsonplus): each holds a
# (module, name, argument(s)[, method]) tuple.
_EXT_KINDS = {
    0: "constructor",
    1: "constructor",
    2: "constructor",
    3: "method",
    4: "pydantic",
    5: "pydantic",
    6: "numpy",
    7: "delta snapshot",
}


def is_saver_record(checkpoint: Checkpoint) -> bool:
    return checkpoint.graph.name == GRAPH_NAME


def readable(backend: Backend, checkpoint: Checkpoint, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (the state at `checkpoint`) with every sealed LangGraph value decoded, or a
    note saying why it cannot be; other threads' values are returned as they are."""
    if not is_saver_record(checkpoint):
        return dict(values)
    opener = _opener(backend, checkpoint.thread_id)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == HEADER and isinstance(value, dict):
            out[name] = {
                k: opener(v) if k in ("meta", "extra") and isinstance(v, str) else v
                for k, v in value.items()
            }
        elif name == WRITE_VALUES or (field_channel(name) is not None):
            out[name] = [opener(v) for v in value] if isinstance(value, list) else opener(value)
        else:
            out[name] = value
    return out


def _opener(backend: Backend, ledger_id: str) -> Any:
    """A function from a sealed value to its readable form, for one ledger thread."""
    name = LedgerName.parse(ledger_id)
    current, _ = manifest.read(backend.checkpoints, name.thread_id)
    key = None
    if current.generation == name.generation:
        key = current.key
    elif current.staged is not None and current.staged.generation == name.generation:
        key = current.staged.key
    erased = next((e for e in current.erased if e.generation == name.generation), None)
    cipher = ThreadCipher(key) if key is not None else None

    def opener(value: Any) -> Any:
        if not isinstance(value, str) or ":" not in value:
            return value  # an erasure marker, or None
        if cipher is None:
            why = (
                f"its data key was destroyed at {erased.at} (delete_thread or prune)"
                if erased is not None
                else "no data key for this generation in the thread's manifest"
            )
            return {"$sealed": value.split(":", 1)[0], "note": f"not readable: {why}"}
        try:
            return decode(*cipher.open(value, where=(ledger_id, -1)))
        except CorruptRecord:
            return {"$sealed": value.split(":", 1)[0], "note": "does not decrypt with its key"}

    return opener


def decode(kind: str, data: bytes) -> Any:
    """A LangGraph serializer value `(type, bytes)` as plain JSON-like data, running no code."""
    if kind == "null":
        return None
    if kind == "json":
        return json.loads(data)
    if kind in ("bytes", "bytearray"):
        return {"$bytes": base64.b64encode(data).decode("ascii")}
    if kind == "msgpack":
        if _ormsgpack is None:
            return {"$sealed": kind, "note": "msgpack: install ormsgpack (or langgraph) to read"}
        return _unpack(data)
    if kind == "pickle":
        return {"$sealed": kind, "note": "a pickled value: reading never unpickles"}
    raise InvalidInput(f"unknown LangGraph serializer type {kind!r}", field="value")


def _unpack(data: bytes) -> Any:
    def ext_hook(code: int, raw: bytes) -> Any:
        inner = _unpack(raw)
        if code in (0, 1, 2, 3, 4, 5) and isinstance(inner, list | tuple) and len(inner) >= 3:
            return {"$type": f"{inner[0]}.{inner[1]}", "value": inner[2]}
        return {"$type": _EXT_KINDS.get(code, f"msgpack ext {code}"), "value": inner}

    return _ormsgpack.unpackb(data, ext_hook=ext_hook, option=_ormsgpack.OPT_NON_STR_KEYS)


__all__ = ["decode", "is_saver_record", "readable"]
