"""The changes that turn the ledger's state into a LangGraph checkpoint's channels.

The ledger's state before a `put` is the previous checkpoint's channels (whatever LangGraph
calls that checkpoint's parent); a channel is left alone when LangGraph gave it no new version
and its version is the one the previous checkpoint had, removed when the checkpoint no longer
has it (the saver's own fields, such as the last pending writes, are left as they are), and
otherwise sealed anew: `set` whole, or, for a list that only grew (the serialized items the
previous checkpoint had are its prefix), `add` of the new items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from durable_graph.langgraph_saver.cipher import ThreadCipher, Typed
from durable_graph.langgraph_saver.index import HEADER, channel_field, field_channel
from durable_graph.state import FieldChange


class Serde(Protocol):
    """LangGraph's `SerializerProtocol`, the two methods the ledger uses."""

    def dumps_typed(self, obj: Any) -> Typed: ...

    def loads_typed(self, data: Typed) -> Any: ...


def checkpoint_changes(
    serde: Serde,
    cipher: ThreadCipher,
    header: dict[str, Any],
    checkpoint: Mapping[str, Any],
    new_versions: Mapping[str, Any],
    prev: dict[str, Any],
    before: Mapping[str, Any],
    known: Mapping[str, list[Typed]],
    lists: dict[str, list[Typed]],
) -> tuple[dict[str, FieldChange], dict[str, Any]]:
    """The changes and the state after them. `before`: the previous checkpoint's channel
    versions; `known`: its list channels' serialized items, if this process has them; `lists`
    is filled with this checkpoint's (for the next put)."""
    versions: Mapping[str, Any] = checkpoint["channel_versions"]
    values: Mapping[str, Any] = checkpoint["channel_values"]
    changed: dict[str, FieldChange] = {}
    after = dict(prev)
    for name in prev:
        channel = field_channel(name)
        gone = channel is not None and (channel not in versions or channel not in values)
        if gone:
            changed[name] = FieldChange("del", None)
            after.pop(name)
    for channel, version in versions.items():
        name = channel_field(channel)
        if channel not in values:
            continue
        same = channel not in new_versions and before.get(channel) == version
        if same and name in prev:
            if channel in known:
                lists[channel] = known[channel]
            continue
        value = values[channel]
        if type(value) is not list:
            after[name] = cipher.seal(serde.dumps_typed(value))
            changed[name] = FieldChange("set", after[name])
            continue
        items = [serde.dumps_typed(item) for item in value]
        lists[channel] = items
        old = known.get(channel)
        grew = old is not None and isinstance(prev.get(name), list)
        if grew and old is not None and items[: len(old)] == old:
            added = [cipher.seal(item) for item in items[len(old) :]]
            if added:
                after[name] = [*prev[name], *added]
                changed[name] = FieldChange("add", added)
            continue
        after[name] = [cipher.seal(item) for item in items]
        changed[name] = FieldChange("set", after[name])
    after[HEADER] = header
    changed[HEADER] = FieldChange("set", header)
    return changed, after


__all__ = ["Serde", "checkpoint_changes"]
