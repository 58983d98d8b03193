"""Chat messages in the state: `add_messages` and `MessagesState`, as LangGraph has them.

A message is kept in the ledger as JSON: a LangChain message's own pydantic dump (`type`,
`content`, `id`, `tool_calls`, `additional_kwargs`...), read back into the same class, so
nothing is lost (`tool_calls` included). LangChain is optional (`pip install
durable-graph[langchain]`): with `langchain-core` installed, nodes see message objects
(`AIMessage`, `ToolMessage`...); without it, the same JSON dicts. A node may write messages as
objects, dicts, `(role, content)` pairs or plain strings (a human message), as with LangGraph.

`add_messages` appends, replaces the message with the same `id`, removes on a
`RemoveMessage(id=...)` (`REMOVE_ALL_MESSAGES` clears), and gives a message without an id a
fresh one. Appending messages with new ids is stored as an append (the step's change is the new
messages only), so a long conversation costs per turn what the turn added.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypedDict

from pydantic import TypeAdapter

__all__ = [
    "HAS_LANGCHAIN",
    "REMOVE_ALL_MESSAGES",
    "MessagesState",
    "add_messages",
    "is_add_messages",
    "message_type",
    "messages_json",
]

REMOVE_ALL_MESSAGES = "__remove_all__"
_ROLES = {"user": "human", "human": "human", "assistant": "ai", "ai": "ai", "system": "system"}
_ROLES |= {"tool": "tool", "function": "function", "developer": "system"}

try:  # the optional extra: LangChain message objects in nodes
    from langchain_core.messages import AnyMessage as _AnyMessage
    from langchain_core.messages import BaseMessage as _BaseMessage
    from langchain_core.messages import convert_to_messages as _convert

    HAS_LANGCHAIN = True
except ImportError:  # pragma: no cover - exercised where langchain-core is absent
    HAS_LANGCHAIN = False
    _AnyMessage = dict[str, Any]  # type: ignore[misc,assignment]
    _BaseMessage = None  # type: ignore[misc,assignment]
    _convert = None  # type: ignore[assignment]


def message_type() -> Any:
    """The type a message field validates to: LangChain's `AnyMessage` union when it is
    installed (so each dict comes back as its own class), else a JSON object."""
    return _AnyMessage


def _one(message: Any) -> dict[str, Any]:
    """One message as its JSON dict (a LangChain object's dump, or a normalised dict)."""
    if HAS_LANGCHAIN and isinstance(message, _BaseMessage):
        dumped: dict[str, Any] = message.model_dump(mode="json")
        return dumped
    if HAS_LANGCHAIN and not (isinstance(message, Mapping) and "type" in message):
        return _one(_convert([message])[0])
    if isinstance(message, str):
        return {"type": "human", "content": message}
    if isinstance(message, tuple | list) and len(message) == 2:
        role, content = message
        return {"type": _ROLES.get(str(role), str(role)), "content": content}
    if isinstance(message, Mapping):
        doc = dict(message)
        if "type" not in doc and "role" in doc:
            doc["type"] = _ROLES.get(str(doc.pop("role")), "human")
        return doc
    raise TypeError(
        f"a message is a LangChain message, a dict, a (role, content) pair or a string; "
        f"got {type(message).__name__}"
    )


def messages_json(value: Any, *, seed: str | None = None) -> list[dict[str, Any]]:
    """A write to a messages field (one message or a list of them) as a list of JSON dicts,
    each with an id: a message without one gets a UUID, derived from `seed` and its position
    when given (a node's re-run names its messages the same), else random."""
    items = value if isinstance(value, list | tuple) and not _is_pair(value) else [value]
    out = []
    for index, item in enumerate(items):
        doc = _one(item)
        if not doc.get("id"):
            fresh = uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}#{index}") if seed else uuid.uuid4()
            doc["id"] = str(fresh)
        out.append(doc)
    return out


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and not isinstance(value[1], tuple | list | Mapping)
    )


def appends(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> bool:
    """True when `right` (JSON, with ids) only adds messages: no id of `left`, no removal."""
    if any(m.get("type") == "remove" for m in right):
        return False
    ids = {m.get("id") for m in right}
    if len(ids) != len(right):
        return False
    return not any(m.get("id") in ids for m in left)


def merge(left: Sequence[Any], right: Sequence[Any]) -> list[dict[str, Any]]:
    """`add_messages` on JSON dicts: replace by id, remove, append."""
    merged = [dict(m) for m in left]
    position = {m.get("id"): i for i, m in enumerate(merged)}
    removed: set[Any] = set()
    for message in right:
        if message.get("type") == "remove":
            if message.get("id") == REMOVE_ALL_MESSAGES:
                merged, position, removed = [], {}, set()
                continue
            if message.get("id") not in position:
                raise ValueError(
                    f"RemoveMessage names id {message.get('id')!r}, which no message has"
                )
            removed.add(message.get("id"))
            continue
        index = position.get(message.get("id"))
        if index is None:
            position[message.get("id")] = len(merged)
            merged.append(dict(message))
        else:
            merged[index] = dict(message)
            removed.discard(message.get("id"))
    return [m for m in merged if m.get("id") not in removed]


def add_messages(left: Any, right: Any) -> Any:
    """Merge two lists of messages (LangGraph's `add_messages`): by id, with removals.

    Used as a reducer (`Annotated[list[AnyMessage], add_messages]`) the engine applies it to
    the JSON form; called directly, it takes and returns LangChain messages (or dicts).
    """
    merged = merge(messages_json(left or []), messages_json(right or []))
    if HAS_LANGCHAIN:
        objects: list[Any] = TypeAdapter(list[_AnyMessage]).validate_python(merged)
        return objects
    return merged


def is_add_messages(reducer: Callable[..., Any]) -> bool:
    """Ours, or LangGraph's own `add_messages` (a state written for LangGraph keeps working)."""
    if reducer is add_messages:
        return True
    module = getattr(reducer, "__module__", "") or ""
    return getattr(reducer, "__name__", "") == "add_messages" and module.startswith("langgraph")


class MessagesState(TypedDict):
    """A state with a `messages` list merged by `add_messages`; subclass it to add fields."""

    messages: Annotated[list[_AnyMessage], add_messages]
