"""Replay: re-run the node(s) of a recorded step against the inputs recorded with it, and
compare what they produce with the record (`Engine.replay`; `durable-graph replay`).

The node runs as a worker runs it, through the engine's task runner, in a `NodeContext` whose
`ctx.record` / `ctx.step` get the step's recorded answers back, so no external call is
repeated; anything a node does outside the context runs for real, which is why side effects
belong in `ctx.step`. Nothing is written: a replay reads the ledger and reports.

Example:
    >>> engine.replay("tx-1", 1).verdict  # doctest: +SKIP
    'reproduced'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from durable_graph.backend import Backend
from durable_graph.canonical import digest
from durable_graph.checkpoint import Checkpoint, GraphRef, Task
from durable_graph.context import NodeContext, bind, unbind
from durable_graph.erasure_record import describe_erased
from durable_graph.errors import GraphInterrupt, InvalidInput
from durable_graph.payloads import hydrate, loaded
from durable_graph.reading import step_of as read_step
from durable_graph.routing import route_after
from durable_graph.spec import GraphSpec, Send
from durable_graph.tasks import TaskRunner, goto_targets, with_argument


class Rerunner(Protocol):
    """What a replay uses of the engine (`Engine` is one; this module cannot import it, the
    engine imports this): its graph and the task runner that runs a node as a worker does."""

    spec: GraphSpec
    backend: Backend
    graph: GraphRef
    tasks: TaskRunner

    def values_of(self, checkpoint: Checkpoint) -> dict[str, Any]: ...


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


def replay_step(engine: Rerunner, thread_id: str, step: int) -> ReplayReport:
    """Re-execute the node(s) that produced `step` from the state of `step - 1`, feeding the
    external inputs recorded at `step`, and compare update, routing and status with the record
    (`Engine.replay`).
    """
    backend = engine.backend
    record = read_step(backend, thread_id, step)
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
    # What it was fed besides the state: a task's argument, a resume value (`erase --parts`).
    parts += [
        f"the argument of task {t.id} ({describe_erased(t.arg)})"
        for t in base.next
        if describe_erased(t.arg) is not None
    ]
    parts += [
        f"a resume value of task {task} ({describe_erased(value)})"
        for task, values in base.resume.items()
        for value in values
        if describe_erased(value) is not None
    ]
    written = [
        name
        for name, change in record.changes.items()
        if change.op != "del"
        and change.ref is None
        and change.s is None
        and change.v is None
        and change.e is None  # sealed (encryption at rest): there, opened by the key
    ]
    if written:
        parts.append(f"what it wrote to {', '.join(written)} (erased)")
    empty = digest(None)
    gone = [
        io
        for io in record.io
        if io.response is None and io.s is None and io.response_sha256 != empty
    ]
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
    engine: Rerunner, record: Checkpoint, base: Checkpoint, values: dict[str, Any], task: Task
) -> _Replayed:
    calls = [io for io in record.io if io.task_id == task.id]
    recorded = {io.name: hydrate(io.response, engine.backend.payloads) for io in calls}
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
        replay_calls=calls,  # a call's request is matched under its record's salt
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
    engine: Rerunner,
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
    engine: Rerunner,
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
    payloads = engine.backend.payloads  # a big `Send` argument is compared as it was sent
    recorded_next = sorted(_scheduled(with_argument(t, payloads)) for t in record.next)
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


__all__ = ["ReplayReport", "Rerunner", "TaskReplay", "Verdict", "replay_step"]
