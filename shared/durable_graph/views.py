"""What a user reads of a thread, in LangGraph's shapes: `StateSnapshot` (with its `tasks`),
checkpoint ids and configs, and the interrupts a suspended head waits on (a subgraph task's
included). `CompiledGraph.get_state`/`get_state_history` and the streams build on these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from durable_graph import messages
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, ErrorInfo, InterruptInfo, ParentRef
from durable_graph.commands import Interrupt, interrupt_id, nested_interrupt_id
from durable_graph.errors import InvalidInput
from durable_graph.fanin import done_key
from durable_graph.lazy_values import Convert, FieldSource, LazyValues
from durable_graph.payloads import loaded
from durable_graph.spec import GraphSpec
from durable_graph.subgraphs import SubgraphNode

__all__ = [
    "PendingInterrupt",
    "SnapshotTask",
    "StateSnapshot",
    "checkpoint_id",
    "config_for",
    "lazy_snapshot_of",
    "lazy_values_snapshot_of",
    "parse_checkpoint_id",
    "pending_of",
    "snapshot_of",
]

_SOURCES = {"input": "input", "node": "loop", "update": "update", "fork": "fork"}


_STATE_PARTS = frozenset({"values", "json_values", "checkpoint"})


@dataclass(frozen=True)
class StateSnapshot:
    """One checkpoint as a user reads it: values with payloads fetched back (chat messages
    as LangChain objects when it is installed; `json_values` keeps the stored JSON), and
    LangGraph's `config`, `metadata`, `parent_config`, `interrupts` and `tasks`.

    The head's snapshot (`get_state` without a step) reads only the head row: `values`,
    `json_values` and `checkpoint` (the record with its state) are read from the store on the
    first access of any of them, then kept: each is then a plain `dict` / `Checkpoint`, never
    a proxy, so a reader that checks `next` or `config` of a long thread does not build its
    whole state. Read them before closing the backend (`docs/langgraph-compatibility.md`).
    Equality, `repr`, `dataclasses.replace`, copying and pickling read them first.

    A lazy read (`get_state(config, lazy=True)`) gives `values` and `json_values` as
    read-only `LazyValues` mappings, each field read on its first access (a list field a
    `LazySequence`, fetching only the segments it touches), and `checkpoint` as the row says
    it (its `values` empty unless this process had the state at hand). Pickling and copying
    read them whole, into `dict`s and `list`s."""

    thread_id: str
    step: int
    status: str
    values: Mapping[str, Any]
    next: tuple[str, ...]
    source: str
    nodes: tuple[str, ...]
    created_at: str
    interrupt: InterruptInfo | None
    error: ErrorInfo | None
    parent: ParentRef | None
    checkpoint: Checkpoint
    json_values: Mapping[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_config: dict[str, Any] | None = None
    interrupts: tuple[Interrupt, ...] = ()
    tasks: tuple[SnapshotTask, ...] = ()
    # Reads (checkpoint, json_values, values) once, on first access of any of them; None
    # once read, or when they were given. Not a field: `fields`, `asdict` and `replace` see
    # the snapshot's data only (`lazy_snapshot_of` sets it on the instance).
    _read_state: ClassVar[
        Callable[[], tuple[Checkpoint, dict[str, Any], dict[str, Any]]] | None
    ] = None

    def __getattribute__(self, name: str) -> Any:
        if name in _STATE_PARTS and object.__getattribute__(self, "_read_state") is not None:
            object.__getattribute__(self, "_load")()
        return object.__getattribute__(self, name)

    def _load(self) -> None:
        read = object.__getattribute__(self, "_read_state")
        if read is None:  # another thread read it meanwhile
            return
        checkpoint, json_values, values = read()
        for name, value in (("checkpoint", checkpoint), ("json_values", json_values)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_read_state", None)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied with its state read (a store connection does not pickle)."""
        self._load()
        return dict(self.__dict__)


@dataclass(frozen=True)
class SnapshotTask:
    """A task the snapshot's step runs next, as LangGraph's `PregelTask`: the interrupts it
    waits on, its failure, and for a subgraph node `state`: the subgraph's config, or its
    `StateSnapshot` when read with `subgraphs=True`."""

    id: str
    name: str
    path: tuple[str, ...] = ()
    error: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


@dataclass(frozen=True)
class PendingInterrupt:
    """A pending interrupt: the task that waits on it, and, when that task runs a subgraph,
    the subgraph's own id for it (what the subgraph is resumed with)."""

    task_id: str
    interrupt: Interrupt
    inner_id: str | None = None


def checkpoint_id(checkpoint: Checkpoint | ParentRef) -> str:
    """LangGraph's `checkpoint_id` for one of our steps: the step, zero-padded (ids sort in
    step order), and the start of its hash (an id names one record, not a position)."""
    return f"{checkpoint.step:08d}-{checkpoint.hash[:16]}"


def parse_checkpoint_id(value: Any) -> tuple[int, str]:
    """(step, hash prefix) from a `checkpoint_id` (or a bare step number)."""
    text = str(value)
    step, _, prefix = text.partition("-")
    if not step.isdigit():
        raise InvalidInput(
            f"checkpoint_id {text!r} is not one of this store's ids (they look like "
            "'00000003-1f2e3d4c5b6a7980'; read them from get_state(...).config)",
            field="checkpoint_id",
        )
    return int(step), prefix


def config_for(checkpoint: Checkpoint | ParentRef, thread_id: str) -> dict[str, Any]:
    """LangGraph's config naming one checkpoint (what `update_state` returns, what a
    snapshot's `config` holds)."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": checkpoint_id(checkpoint),
        }
    }


def pending_of(spec: GraphSpec, backend: Backend, head: Checkpoint) -> list[PendingInterrupt]:
    """The `interrupt()` calls a suspended head waits on, each with its id: every one of a
    parallel step (their payloads are in the step's task results), every one a subgraph task
    waits on (under the parent's ids), else the one the head names."""
    info = head.interrupt
    if head.status != "suspended" or info is None or info.when != "during":
        return []
    nodes = {t.id: t.node for t in head.next}

    def make(task_id: str, payload: Any) -> list[PendingInterrupt]:
        node = spec.nodes.get(nodes.get(task_id, ""))
        if node is not None and isinstance(node.fn, SubgraphNode):
            inner = node.fn.pending(backend, head.thread_id, task_id)
            if inner:  # every interrupt the subgraph waits on, under the parent's ids
                return [
                    PendingInterrupt(
                        task_id, Interrupt(i.value, nested_interrupt_id(task_id, i.id)), i.id
                    )
                    for i in inner
                ]
        index = len(head.resume.get(task_id, []))
        return [
            PendingInterrupt(task_id, Interrupt(value=payload, id=interrupt_id(task_id, index)))
        ]

    waiting = [t for t in head.next if t.done_at is None]
    if len(waiting) > 1 and head.step > 0:
        keys = {t.id: done_key(head.step - 1, t.id) for t in waiting}
        rows = backend.checkpoints.get_records(head.thread_id, list(keys.values()))
        found = [
            pending
            for t in waiting
            if keys[t.id] in rows and rows[keys[t.id]].value.get("kind") == "interrupt"
            for pending in make(t.id, rows[keys[t.id]].value.get("interrupt"))
        ]
        if found:
            return found
    return make(info.task_id, loaded(info.payload, backend.payloads)) if info.task_id else []


def snapshot_of(
    spec: GraphSpec,
    backend: Backend,
    checkpoint: Checkpoint,
    values: dict[str, Any],
    *,
    subgraphs: bool = False,
) -> StateSnapshot:
    """`checkpoint` (whose state is `values`) as a user reads it; `subgraphs`: each task
    that runs a subgraph carries the subgraph's snapshot (else its config)."""
    return _snapshot(spec, backend, checkpoint, subgraphs, values=values)


def lazy_snapshot_of(
    spec: GraphSpec,
    backend: Backend,
    head: Checkpoint,
    read: Callable[[], tuple[Checkpoint, dict[str, Any]]],
    *,
    subgraphs: bool = False,
) -> StateSnapshot:
    """`head` as its row says it (`values` not materialised) as a user reads it: `read`
    gives the record with its state and the state's values, on the first access of the
    snapshot's `values`, `json_values` or `checkpoint`."""

    def state() -> tuple[Checkpoint, dict[str, Any], dict[str, Any]]:
        checkpoint, values = read()
        if checkpoint.hash != head.hash:  # never: the row is immutable once written
            raise AssertionError(f"read step {checkpoint.step} {checkpoint.hash}, not the head")
        return checkpoint, values, spec.schema.output(values)

    return _snapshot(spec, backend, head, subgraphs, read=state)


def lazy_values_snapshot_of(
    spec: GraphSpec,
    backend: Backend,
    record: Checkpoint,
    source: FieldSource,
    *,
    subgraphs: bool = False,
) -> StateSnapshot:
    """`record` (as its row says it) as a user reads it, its values read field by field from
    `source` on first access (`lazy_values.py`): `json_values` as stored, `values` with chat
    messages as LangChain objects where it is installed (as `schema.output` gives them)."""
    schema = spec.schema
    converters: dict[str, Convert] = (
        {name: schema.adapters[name].validate_python for name in schema.message_fields}
        if messages.HAS_LANGCHAIN
        else {}
    )
    return _snapshot(
        spec,
        backend,
        record,
        subgraphs,
        lazy=(LazyValues(source, converters), LazyValues(source)),
    )


def _snapshot(
    spec: GraphSpec,
    backend: Backend,
    checkpoint: Checkpoint,
    subgraphs: bool,
    *,
    values: dict[str, Any] | None = None,
    read: Callable[[], tuple[Checkpoint, dict[str, Any], dict[str, Any]]] | None = None,
    lazy: tuple[LazyValues, LazyValues] | None = None,
) -> StateSnapshot:
    tid = checkpoint.thread_id
    parent = checkpoint.parent
    pending = pending_of(spec, backend, checkpoint)
    shown: Mapping[str, Any] = spec.schema.output(values) if values is not None else {}
    json_values: Mapping[str, Any] = values if values is not None else {}
    if lazy is not None:
        shown, json_values = lazy
    snapshot = StateSnapshot(
        thread_id=tid,
        step=checkpoint.step,
        status=checkpoint.status,
        values=shown,
        next=tuple(t.node for t in checkpoint.next),
        source=checkpoint.source,
        nodes=tuple(checkpoint.nodes),
        created_at=checkpoint.created_at,
        interrupt=checkpoint.interrupt,
        error=checkpoint.error,
        parent=parent,
        checkpoint=checkpoint,
        json_values=json_values,
        config=config_for(checkpoint, tid),
        metadata={
            "source": _SOURCES.get(checkpoint.source, checkpoint.source),
            "step": checkpoint.step,
            "status": checkpoint.status,
            "nodes": list(checkpoint.nodes),
            "parents": {},
            "hash": checkpoint.hash,
        },
        parent_config=config_for(parent, parent.thread_id) if parent is not None else None,
        interrupts=tuple(p.interrupt for p in pending),
        tasks=_tasks(spec, backend, checkpoint, pending, subgraphs=subgraphs),
    )
    if read is not None:
        object.__setattr__(snapshot, "_read_state", read)
    return snapshot


def _tasks(
    spec: GraphSpec,
    backend: Backend,
    checkpoint: Checkpoint,
    pending: Sequence[PendingInterrupt],
    *,
    subgraphs: bool,
) -> tuple[SnapshotTask, ...]:
    """LangGraph's `tasks` of a snapshot: its next tasks, with what each waits on."""
    waiting: dict[str, list[Interrupt]] = {}
    for found in pending:
        waiting.setdefault(found.task_id, []).append(found.interrupt)
    failure = checkpoint.error
    tasks = []
    for task in checkpoint.next:
        node = spec.nodes.get(task.node)
        state: Any = None
        if node is not None and isinstance(node.fn, SubgraphNode):
            state = node.fn.state(backend, checkpoint.thread_id, task.id, subgraphs)
        error = (
            f"{failure.type}: {failure.message}"
            if failure is not None and failure.task_id == task.id
            else None
        )
        tasks.append(
            SnapshotTask(
                id=task.id,
                name=task.node,
                path=("__pregel_pull", task.node),
                error=error,
                interrupts=tuple(waiting.get(task.id, ())),
                state=state,
            )
        )
    return tuple(tasks)
