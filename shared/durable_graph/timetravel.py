"""Time travel: compare two steps (`diff`), branch a thread from any step (`fork`), and re-run
the node of a past step against its recorded inputs (`replay`: the engine's operation,
`Engine.replay`, in `durable_graph.replay`; this module keeps the call the CLI and scripts use).

A thread's own history is one linear, append-only chain; a fork is a *new* thread whose step 0
records its origin `(thread, step, hash)` and links its `prev_hash` to that hash, so `verify`
checks the branch point against the origin record.

Example:
    >>> from durable_graph.timetravel import diff, fork, replay  # doctest: +SKIP
    >>> replay(app, "tx-1", 1).verdict  # doctest: +SKIP
    'reproduced'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_graph.backend import Backend
from durable_graph.canonical import digest, sha256_hex
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.payloads import MARKER, hydrate, is_ref
from durable_graph.reading import readable_values
from durable_graph.reading import step_of as read_step
from durable_graph.replay import ReplayReport, TaskReplay, Verdict
from durable_graph.runtime import CompiledGraph

# ---------------------------------------------------------------------------------------- diff


def _shown(value: Any, backend: Backend, fetch: bool) -> Any:
    """Payload refs and strings over the offload threshold as `{"payload": {sha256, size,
    content_type}}` (their digest and size, as the CLI prints them), or whole when asked."""
    if isinstance(value, str) and not fetch:
        data = value.encode("utf-8")
        if len(data) > backend.offload_threshold:
            return {
                "payload": {
                    "sha256": sha256_hex(data),
                    "size": len(data),
                    "content_type": "text/plain; charset=utf-8",
                }
            }
    if is_ref(value):
        if fetch:
            return hydrate(value, backend.payloads)
        ref = value[MARKER]
        return {"payload": {k: ref[k] for k in ("sha256", "size", "content_type") if k in ref}}
    if isinstance(value, dict):
        return {k: _shown(v, backend, fetch) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v, backend, fetch) for v in value]
    return value


shown = _shown  # public: the explorer shows a state the way `diff` shows it


def _summary(record: Checkpoint) -> dict[str, Any]:
    return {
        "thread_id": record.thread_id,
        "step": record.step,
        "hash": record.hash,
        "source": record.source,
        "nodes": list(record.nodes),
        "status": record.status,
        "next": [t.node for t in record.next],
        "actor": record.actor.model_dump(),
        "created_at": record.created_at,
    }


def diff(
    backend: Backend,
    thread_id: str,
    a: int,
    b: int,
    *,
    fetch: bool = False,
    thread_b: str | None = None,
) -> dict[str, Any]:
    """Which state fields changed from step `a` to step `b` (of `thread_b`, e.g. a fork).

    Each change is `added`, `removed`, `appended` (a list that grew at its end: only the new
    items are shown) or `changed` (old and new value). Offloaded values show as their digest and
    size; `fetch=True` shows their content.
    """
    first = read_step(backend, thread_id, a)
    second = read_step(backend, thread_b or thread_id, b)
    old = readable_values(backend, first)
    new = readable_values(backend, second)
    changes: list[dict[str, Any]] = []
    unchanged: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            changes.append(
                {"field": key, "change": "removed", "old": _shown(old[key], backend, fetch)}
            )
        elif key not in old:
            changes.append(
                {"field": key, "change": "added", "new": _shown(new[key], backend, fetch)}
            )
        elif digest(old[key]) == digest(new[key]):
            unchanged.append(key)
        elif _appended(old[key], new[key]):
            changes.append(
                {
                    "field": key,
                    "change": "appended",
                    "appended": _shown(new[key][len(old[key]) :], backend, fetch),
                    "old_length": len(old[key]),
                    "new_length": len(new[key]),
                }
            )
        else:
            changes.append(
                {
                    "field": key,
                    "change": "changed",
                    "old": _shown(old[key], backend, fetch),
                    "new": _shown(new[key], backend, fetch),
                }
            )
    return {"a": _summary(first), "b": _summary(second), "changes": changes, "unchanged": unchanged}


def _appended(old: Any, new: Any) -> bool:
    return (
        isinstance(old, list)
        and isinstance(new, list)
        and len(new) > len(old)
        and digest(new[: len(old)]) == digest(old)
    )


# ---------------------------------------------------------------------------------------- fork


def fork(
    app: CompiledGraph,
    thread_id: str,
    step: int,
    new_thread_id: str,
    values: Mapping[str, Any] | None = None,
    *,
    actor: Actor | None = None,
) -> Checkpoint:
    """Start `new_thread_id` from the state of `thread_id` at `step` (plus `values`, applied
    through the reducers like `update_state`). It then runs like any thread: it continues with
    the origin step's next tasks, suspended if the origin was waiting for a decision.

    The fork runs under the graph loaded now, so it is also how a thread moves to a new graph
    version. Side effects in the fork are new ones: `ctx.idempotency_key` differs per thread.
    """
    origin = read_step(app.backend, thread_id, step)
    return app.engine().fork(origin, new_thread_id, values, actor=actor)


def replay(app: CompiledGraph, thread_id: str, step: int) -> ReplayReport:
    """Re-execute the node(s) that produced `step` from the state of `step - 1`, feeding the
    external inputs recorded at `step`, and compare update, routing and status with the record
    (`Engine.replay`, with `app`'s engine)."""
    return app.engine().replay(thread_id, step)


__all__ = ["ReplayReport", "TaskReplay", "Verdict", "diff", "fork", "read_step", "replay"]
