"""What a LangGraph-style `config` says to a call on a compiled graph: which thread, how many
steps a run may take, and which past checkpoint it names. Each is read in one place, so a bad
value gets the same error from `invoke`, `stream`, `update_state` and `get_state`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_graph.errors import InvalidInput
from durable_graph.runs import DEFAULT_RECURSION_LIMIT


def recursion_limit_of(config: Mapping[str, Any] | str | None) -> int:
    limit = config.get("recursion_limit") if isinstance(config, Mapping) else None
    if limit is None:
        return DEFAULT_RECURSION_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidInput(
            f"recursion_limit must be a positive integer, not {limit!r}", field="recursion_limit"
        )
    return limit


def thread_id_of(config: Mapping[str, Any] | str | None, thread_id: str | None) -> str:
    if thread_id is not None:
        return thread_id
    if isinstance(config, str):
        return config
    if isinstance(config, Mapping):
        configurable = config.get("configurable", {})
        if isinstance(configurable, Mapping) and "thread_id" in configurable:
            return str(configurable["thread_id"])
    raise InvalidInput(
        "a thread id is required: pass thread_id=... or config={'configurable': "
        "{'thread_id': ...}}",
        field="thread_id",
    )


def checkpoint_id_in(config: Mapping[str, Any] | str | None) -> Any:
    """The `configurable.checkpoint_id` a config names (None: none, the head is meant)."""
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    return configurable.get("checkpoint_id") if isinstance(configurable, Mapping) else None
