"""Time travel: compare two steps (`diff`), branch a thread from any step (`fork`), and re-run
the node of a past step against its recorded inputs (`replay`).

A thread's own history is one linear, append-only chain; a fork is a *new* thread whose step 0
records its origin `(thread, step, hash)` and links its `prev_hash` to that hash, so `verify`
checks the branch point against the origin record.

Replay re-executes node code. External calls made through `ctx.record` / `ctx.step` get their
recorded answers back and are never repeated; anything a node does outside the context runs for
real, which is why side effects belong in `ctx.step`.

Example:
    >>> from durable_graph.timetravel import diff, fork, replay  # doctest: +SKIP
    >>> replay(app, "tx-1", 1).verdict  # doctest: +SKIP
    'reproduced'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from durable_graph.backend import Backend
from durable_graph.canonical import digest, sha256_hex
from durable_graph.checkpoint import Actor, Checkpoint, Task
from durable_graph.context import NodeContext, bind, unbind
from durable_graph.engine import Engine
from durable_graph.erasure_record import describe_erased
from durable_graph.errors import GraphInterrupt, InvalidInput
from durable_graph.payloads import MARKER, hydrate, is_ref, loaded
from durable_graph.reading import readable_values
from durable_graph.reading import step_of as read_step
from durable_graph.routing import route_after
from durable_graph.runtime import CompiledGraph
from durable_graph.spec import Send
from durable_graph.tasks import goto_targets

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


# -------------------------------------------------------------------------------------- replay

_WRITERS = {"input": "the thread's input", "update": "a decision (update)", "fork": "a fork"}
Verdict = Literal["reproduced", "diverged", "not_reproducible", "not_applicable"]


@dataclass
class TaskReplay:
    task_id: str
    node: str
    outcome: Literal["ok", "interrupt", "error"]
    recorded_inputs: int
    used_inputs: int
    error: str | None = None


@dataclass
class ReplayReport:
    """What re-running the node(s) of `step` produced, compared with the record.

    Verdicts: `reproduced` (same update and routing), `diverged` (the node recorded external
    inputs, was fed them, and still produced something else: its code or its inputs' use
    changed), `not_reproducible` (it differs and the node recorded no external inputs: it made
    calls outside `ctx.record`/`ctx.step`, so nothing could be fed back), `not_applicable` (the
    step was not produced by a node: an input, a human decision, a fork).
    """

    thread_id: str
    step: int
    verdict: Verdict
    reason: str
    nodes: list[str] = field(default_factory=list)
    tasks: list[TaskReplay] = field(default_factory=list)
    state_matches: bool | None = None
    routing_matches: bool | None = None
    status_matches: bool | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)
    graph_version_matches: bool = True

    @property
    def reproducible(self) -> bool:
        return self.verdict == "reproduced"

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["reproducible"] = self.reproducible
        return doc


class _Tracked(dict[str, Any]):
    """Recorded responses handed to the node; remembers which ones it asked for."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return super().__getitem__(key)


def replay(app: CompiledGraph, thread_id: str, step: int) -> ReplayReport:
    """Re-execute the node(s) that produced `step` from the state of `step - 1`, feeding the
    external inputs recorded at `step`, and compare update, routing and status with the record.
    """
    backend = app.backend
    record = read_step(backend, thread_id, step)
    engine = app.engine()
    version_ok = record.graph.version == engine.graph.version
    if record.source != "node" or step == 0:
        who = f"{record.actor.kind}:{record.actor.id}"
        return ReplayReport(
            thread_id,
            step,
            "not_applicable",
            f"step {step} was written by {_WRITERS[record.source]} ({who}), not by a node: "
            "there is nothing to re-execute",
            graph_version_matches=version_ok,
        )
    if not record.nodes and record.status == "failed" and record.error is not None:
        return ReplayReport(
            thread_id,
            step,
            "not_applicable",
            f"step {step} records a permanent failure ({record.error.message}), not a node run",
            graph_version_matches=version_ok,
        )
    base = read_step(backend, thread_id, step - 1)
    erased = _erased_evidence(base, record)
    if erased is not None:
        return ReplayReport(
            thread_id,
            step,
            "not_reproducible",
            erased,
            nodes=[t.node for t in base.next],
            graph_version_matches=version_ok,
        )
    values = engine.values_of(base)
    results = [_run(engine, record, base, values, task) for task in base.next]
    report = ReplayReport(
        thread_id,
        step,
        "reproduced",
        "",
        nodes=[t.node for t in base.next],
        tasks=[r.task for r in results],
        graph_version_matches=version_ok,
    )
    _compare(engine, record, base, values, results, report)
    return report


def _erased_evidence(base: Checkpoint, record: Checkpoint) -> str | None:
    """Why a step cannot be replayed when what it ran from or wrote was erased, else None."""
    parts = [
        f"{name} ({describe_erased(value)})"
        for name, value in base.values.items()
        if describe_erased(value) is not None
    ]
    written = [
        name
        for name, change in record.changes.items()
        if change.op != "del" and change.ref is None and change.s is None and change.v is None
    ]
    if written:
        parts.append(f"what it wrote to {', '.join(written)} (erased)")
    empty = digest(None)
    gone = [io for io in record.io if io.response is None and io.response_sha256 != empty]
    if gone:
        parts.append(f"{len(gone)} recorded external input(s) (erased)")
    if not parts:
        return None
    return (
        f"step {record.step} cannot be reproduced: its evidence was erased: "
        f"{'; '.join(parts)}. Only digests remain, so the node can be neither fed nor compared"
    )


@dataclass
class _Replayed:
    """One task re-run: its report, and what it produced (writes and `Command.goto` when it
    returned, the payload when it interrupted)."""

    task: TaskReplay
    writes: dict[str, Any] | None = None
    interrupt: Any = None
    goto: list[Any] = field(default_factory=list)


def _run(
    engine: Engine, record: Checkpoint, base: Checkpoint, values: dict[str, Any], task: Task
) -> _Replayed:
    recorded = {
        io.name: hydrate(io.response, engine.backend.payloads)
        for io in record.io
        if io.task_id == task.id
    }
    inputs = _Tracked(recorded)
    ctx = NodeContext(
        engine=engine.tasks.host,
        thread_id=record.thread_id,
        step_number=record.step,
        task_id=task.id,
        node=task.node,
        attempt=1,
        resume_values=list(base.resume.get(task.id, [])),
        replay_io=inputs,
    )
    token = bind(ctx)
    try:
        writes = engine.tasks.call_node(task, values, ctx)
        done = TaskReplay(task.id, task.node, "ok", len(recorded), len(inputs.used))
        return _Replayed(done, writes, goto=list(ctx.goto))
    except GraphInterrupt as signal:
        stopped = TaskReplay(task.id, task.node, "interrupt", len(recorded), len(inputs.used))
        return _Replayed(stopped, interrupt=signal.payload)
    except Exception as exc:  # the node's own failure is a result to compare, not a crash
        message = f"{type(exc).__name__}: {exc}"
        outcome = TaskReplay(task.id, task.node, "error", len(recorded), len(inputs.used), message)
        return _Replayed(outcome)
    finally:
        unbind(token)


def _compare(
    engine: Engine,
    record: Checkpoint,
    base: Checkpoint,
    values: dict[str, Any],
    results: list[_Replayed],
    report: ReplayReport,
) -> None:
    inputs = sum(r.task.recorded_inputs for r in results)
    errors = [r.task for r in results if r.task.outcome == "error"]
    interrupts = [r for r in results if r.task.outcome == "interrupt"]
    if record.status == "failed" or errors:
        expected = record.error.type if record.error else None
        got = errors[0].error if errors else None
        same_failure = bool(errors) and expected is not None and got is not None
        same_failure = same_failure and got is not None and got.startswith(f"{expected}:")
        report.status_matches = same_failure
        if not same_failure:
            report.differences.append({"what": "failure", "recorded": expected, "replayed": got})
    elif record.status == "suspended" and record.interrupt and record.interrupt.when == "during":
        got_payload = interrupts[0].interrupt if interrupts else None
        recorded = loaded(record.interrupt.payload, engine.backend.payloads)
        report.status_matches = bool(interrupts) and digest(got_payload) == digest(recorded)
        if not report.status_matches:
            report.differences.append(
                {
                    "what": "interrupt",
                    "recorded": recorded,
                    "replayed": got_payload if interrupts else None,
                }
            )
    else:
        _compare_update(engine, record, base, values, results, report)
    _conclude(report, inputs)


def _compare_update(
    engine: Engine,
    record: Checkpoint,
    base: Checkpoint,
    values: dict[str, Any],
    results: list[_Replayed],
    report: ReplayReport,
) -> None:
    writes = [r.writes for r in results if r.writes is not None]
    if len(writes) != len(results):
        report.status_matches = False
        report.differences.append(
            {"what": "status", "recorded": record.status, "replayed": "interrupted"}
        )
        return
    try:
        state = engine.spec.schema.apply(values, writes, where="replay")
    except InvalidInput as exc:
        report.state_matches = False
        report.differences.append({"what": "update", "recorded": None, "replayed": str(exc)})
        return
    recorded = engine.values_of(record)
    report.state_matches = digest(state) == digest(recorded)
    for key in sorted(state.keys() | recorded.keys()):
        if digest(state.get(key)) != digest(recorded.get(key)):
            report.differences.append(
                {
                    "what": "field",
                    "field": key,
                    "recorded": recorded.get(key),
                    "replayed": state.get(key),
                }
            )
    ran = [r.task.node for r in results]
    goto: dict[str, list[str | Send]] = {}
    for r in results:  # in task order, as the engine gathers them (engine.build)
        if r.goto:
            goto.setdefault(r.task.node, []).extend(goto_targets(r.goto))
    next_tasks, routes = route_after(
        engine.spec, ran, state, origin_step=record.step, goto=goto, thread_id=record.thread_id
    )
    route_doc = [r.model_dump(mode="json") for r in routes]
    recorded_route = [r.model_dump(mode="json") for r in record.route]
    next_doc = sorted(_scheduled(t) for t in next_tasks)
    recorded_next = sorted(_scheduled(t) for t in record.next)
    report.routing_matches = digest(route_doc) == digest(recorded_route) and next_doc == (
        recorded_next
    )
    if not report.routing_matches:
        report.differences.append(
            {
                "what": "routing",
                "recorded": {"route": recorded_route, "next": recorded_next},
                "replayed": {"route": route_doc, "next": next_doc},
            }
        )
    report.status_matches = True


def _scheduled(task: Task) -> str:
    """A next task as compared: its node, and its `Send` argument's digest when it has one
    (a fan-out that sends other documents does not reproduce)."""
    return task.node if task.arg is None else f"{task.node}:{digest(task.arg)[:16]}"


def _conclude(report: ReplayReport, inputs: int) -> None:
    matched = not report.differences
    if matched:
        report.verdict = "reproduced"
        report.reason = (
            f"the node reproduced the recorded update and routing from {inputs} recorded "
            "external input(s)"
            if inputs
            else "the node reproduced the recorded update and routing; it recorded no external "
            "inputs, so its output follows from the state alone"
        )
    elif inputs:
        report.verdict = "diverged"
        report.reason = (
            f"fed the {inputs} recorded external input(s), the node produced a different "
            "result: its code or the way it uses its inputs changed since"
        )
    else:
        report.verdict = "not_reproducible"
        report.reason = (
            "not reproducible: the node recorded no external inputs (calls made outside "
            "ctx.record / ctx.step cannot be fed back) and its result differs"
        )
    if not report.graph_version_matches:
        report.reason += " (note: the loaded graph is not the version that wrote this step)"


__all__ = ["ReplayReport", "diff", "fork", "read_step", "replay"]
