"""`CompiledGraph`: the LangGraph-familiar surface (`invoke`, `stream`, `ainvoke`, `astream`,
`update_state`, `get_state`, `get_state_history`) over the engine and a backend.

Where LangGraph's semantics exist they are followed (docs/langgraph-compatibility.md lists
each behaviour, and where it differs on purpose): multi-turn threads, `Command`, several
interrupts resumed in one call, `__interrupt__` in the result, `recursion_limit`,
`checkpoint_id` in a config.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from durable_graph import reading
from durable_graph.approval_rule import Approver
from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.clock import Clock, SystemClock
from durable_graph.commands import (
    Command,
    Interrupt,
    resume_map,
)
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import (
    GraphRecursionError,
    InvalidInput,
    StepNotFound,
    ThreadFailed,
    ThreadNotFound,
)
from durable_graph.ports import Delivery
from durable_graph.retention_policy import Retention
from durable_graph.runs import DEFAULT_RECURSION_LIMIT, RunScope, running
from durable_graph.signoff import ApprovalPending, Decision, approver_in, decision_of
from durable_graph.spec import GraphSpec
from durable_graph.state import normalise_update
from durable_graph.streaming import debug_event
from durable_graph.turns import Kind as TurnKind
from durable_graph.turns import new_input, next_turn
from durable_graph.views import (
    PendingInterrupt,
    StateSnapshot,
    config_for,
    parse_checkpoint_id,
    pending_of,
    snapshot_of,
)
from durable_graph.worker import Worker

LEASE_ENV = "DURABLE_GRAPH_LEASE_SECONDS"  # how long a worker holds a task before others may
UNSET: Any = object()  # "no resume value given" (None is a legitimate resume value)


STREAM_MODES = ("values", "updates", "custom", "messages", "checkpoints", "tasks", "debug")
# How a Python caller answers a pending interrupt (said when new input is refused for it).
_ANSWER = (
    "Answer it with invoke(Command(resume=...), config), continue without one with "
    "invoke(None, config), or start over from an earlier step with its checkpoint_id in the "
    "config"
)


def recursion_limit_of(config: Mapping[str, Any] | str | None) -> int:
    limit = config.get("recursion_limit") if isinstance(config, Mapping) else None
    if limit is None:
        return DEFAULT_RECURSION_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidInput(
            f"recursion_limit must be a positive integer, not {limit!r}", field="recursion_limit"
        )
    return limit


class _LimitReached(Exception):
    """Raised from the run's outcome hook to stop its worker at the recursion limit."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


@dataclass
class _RunWatch:
    """What one caller's run watches in each outcome of its worker: its recursion limit,
    counted from the step the run began at (known once it has begun), and its stream."""

    thread_id: str
    limit: int
    scope: RunScope
    streamed: Callable[[RunScope, Checkpoint], None]
    on_outcome: Callable[[Outcome], None] | None = None
    start: int = 0

    def __call__(self, outcome: Outcome) -> None:
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        done = outcome.checkpoint
        if outcome.kind != "committed" or done is None or done.thread_id != self.thread_id:
            return
        if self.scope.sink is not None:
            self.streamed(self.scope, done)
        if done.status == "running" and done.step - self.start >= self.limit:
            raise _LimitReached(done.step)


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


class CompiledGraph:
    """A frozen graph bound to a backend; cheap to create, stateless between calls."""

    def __init__(
        self,
        spec: GraphSpec,
        *,
        backend: Backend | None,
        name: str | None,
        retention: Retention | None = None,
    ) -> None:
        self.spec = spec
        self._backend = backend
        self.name = name or f"{_caller_module()}:graph"
        self.retention = retention
        self.clock: Clock = SystemClock()
        self._engine: Engine | None = None
        self.visibility_timeout = float(os.environ.get(LEASE_ENV, "60"))

    @property
    def version(self) -> str:
        return self.spec.version()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from durable_graph.backends.local import local_backend

            self._backend = local_backend(clock=self.clock)
        return self._backend

    def with_backend(self, backend: Backend, *, clock: Clock | None = None) -> CompiledGraph:
        """The same graph on another backend (tests, the AWS worker, a second home)."""
        other = CompiledGraph(self.spec, backend=backend, name=self.name, retention=self.retention)
        other.clock = clock or self.clock
        other.visibility_timeout = self.visibility_timeout
        return other

    def engine(self, worker_id: str | None = None) -> Engine:
        """The engine for this graph, backend and clock (kept while they stay the same)."""
        if worker_id is not None:
            return self._new_engine(worker_id)
        cached = self._engine
        if (
            cached is None
            or cached.backend is not self.backend
            or cached.clock is not self.clock
            or cached.task_lease_seconds != self.visibility_timeout
        ):
            cached = self._engine = self._new_engine(None)
        return cached

    def _new_engine(self, worker_id: str | None) -> Engine:
        """An engine whose effect claims never outlast the lease this graph's workers take."""
        return Engine(
            self.spec,
            self.name,
            self.backend,
            clock=self.clock,
            worker_id=worker_id,
            task_lease_seconds=self.visibility_timeout,
        )

    def worker(self, **kwargs: Any) -> Worker:
        """A worker that runs this graph's messages (and refuses others' as unknown graphs)."""
        engine = self.engine(kwargs.pop("worker_id", None))

        def engine_for(name: str) -> Engine:
            if name != self.name:
                # loader imports this module (it returns a CompiledGraph): the one import here
                # that stays inside a function
                from durable_graph.loader import load_graph

                return (
                    load_graph(name)
                    .with_backend(self.backend, clock=self.clock)
                    .engine(engine.worker_id)
                )
            return engine

        kwargs.setdefault("visibility_timeout", self.visibility_timeout)
        return Worker(
            self.backend, engine_for, clock=self.clock, worker_id=engine.worker_id, **kwargs
        )

    # ---------------------------------------------------------------- running

    def start(
        self, input: Mapping[str, Any] | None, *, thread_id: str, actor: Actor | None = None
    ) -> Checkpoint:
        """Commit step 0 and queue the first tasks; does not run them (`run --detach`)."""
        return self.engine().start(thread_id, input, actor=actor)

    def invoke(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        thread_id: str | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> dict[str, Any]:
        """Start a thread, give it its next input, or resume it, and run it here until it
        completes or suspends.

        `input` is the state input (a dict), `None` (continue: run a suspended thread's
        pending tasks as they are, as LangGraph does after `update_state`), or a
        `Command(resume=..., update=...)` answering the pending `interrupt()`s. New input on a
        completed thread is its next turn (the same chain continues). `config` is LangGraph's
        (`configurable.thread_id`, optional `configurable.checkpoint_id` to continue from a
        past step, `recursion_limit`, anything else for the nodes that take `config`).

        Returns the state values at the head (chat messages as LangChain objects), with
        `"__interrupt__"`: the pending `Interrupt`s when the thread waits in a node. Raises
        `ThreadFailed` if the thread ends failed (also when it already was: a failure is
        retried explicitly, with `resume(thread_id)`), `GraphRecursionError` when the run
        takes `recursion_limit` steps and is still running.

        Example:
            >>> app.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t"}})
            ... # doctest: +SKIP
        """
        tid = thread_id_of(config, thread_id)
        head = self._run(input, config, tid, RunScope(config=dict(config or {})), on_outcome)
        return self.output(head)

    async def ainvoke(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        thread_id: str | None = None,
    ) -> dict[str, Any]:
        """`invoke` for async callers: the run happens on a worker thread, so the event loop
        is free meanwhile; `async def` nodes run there to completion."""
        return await asyncio.to_thread(self.invoke, input, config, thread_id=thread_id)

    def stream(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "values",
        subgraphs: bool = False,
        thread_id: str | None = None,
    ) -> Iterator[Any]:
        """Run like `invoke`, yielding as it goes (LangGraph's stream modes):

        - `"values"`: the whole state after each step (the input step first);
        - `"updates"`: `{node: update}` as each node finishes;
        - `"custom"`: what nodes send through `writer(...)` / `get_stream_writer()`;
        - `"messages"`: `(message, metadata)` for chat messages: a chat model's tokens as a
          node calls it (with `langchain-core`), and the messages nodes write;
        - `"checkpoints"`: each committed step as LangGraph's checkpoint event (config,
          parent_config, values, metadata, next, tasks); `"tasks"`: each task as it starts
          (id, name, input, triggers) and ends (result, error, interrupts); `"debug"`: both,
          wrapped as `{"type", "step", "timestamp", "payload"}`.

        A list of modes yields `(mode, chunk)` pairs; `subgraphs=True` also yields the chunks
        of subgraphs, each as `(namespace, chunk)` (or `(namespace, mode, chunk)`), the
        namespace `()` for this graph and `("node:task id", ...)` inside a subgraph. When the
        thread suspends in a node, the last chunks are `{"__interrupt__": [Interrupt, ...]}`
        ("updates") and the state with `"__interrupt__"` ("values"). The run happens on a
        helper thread; leaving the loop early does not stop it (the thread is durable: it runs
        to its next stop, like a detached run)."""
        tid = thread_id_of(config, thread_id)
        modes = _modes(stream_mode)
        events: queue.Queue[tuple[tuple[str, ...], str, Any]] = queue.Queue()
        done, failed = "__done__", "__failed__"

        def sink(namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
            events.put((namespace, mode, chunk))

        scope = RunScope(
            config=dict(config or {}), sink=sink, modes=frozenset(modes), subgraphs=subgraphs
        )

        def work() -> None:
            try:
                self._run(input, config, tid, scope, None)
                events.put(((), done, None))
            except BaseException as exc:  # handed to the caller's thread, raised there
                events.put(((), failed, exc))

        runner = threading.Thread(target=work, name=f"stream:{tid}", daemon=True)
        runner.start()
        while True:
            namespace, mode, chunk = events.get()
            if mode == done:
                break
            if mode == failed:
                raise chunk
            shown = chunk if len(modes) == 1 else (mode, chunk)
            if subgraphs:
                yield (namespace, shown) if len(modes) == 1 else (namespace, mode, chunk)
            else:
                yield shown
        runner.join()

    def run_scoped(
        self, input: Any, config: Mapping[str, Any] | None, *, thread_id: str, scope: RunScope
    ) -> Checkpoint:
        """Run like `invoke` under a caller's `scope` (a subgraph streaming into its parent's
        stream); the head it stopped at."""
        return self._run(input, config, thread_id, scope, None)

    async def astream(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "values",
        subgraphs: bool = False,
        thread_id: str | None = None,
    ) -> AsyncIterator[Any]:
        """`stream` for async callers: each chunk is awaited off the event loop."""
        chunks = self.stream(
            input, config, stream_mode=stream_mode, subgraphs=subgraphs, thread_id=thread_id
        )
        end = object()
        while True:
            chunk = await asyncio.to_thread(next, chunks, end)
            if chunk is end:
                return
            yield chunk

    def _run(
        self,
        input: Any,
        config: Mapping[str, Any] | None,
        tid: str,
        scope: RunScope,
        on_outcome: Callable[[Outcome], None] | None,
    ) -> Checkpoint:
        """Commit what the call asks (start, next turn, resume) and lease the first task in
        one unit of work (one transaction when embedded), then run the thread here."""
        limit = recursion_limit_of(config)
        engine = self.engine()
        watch = _RunWatch(tid, limit, scope, self._stream_step, on_outcome)
        with running(tid, scope):
            worker = self.worker(on_outcome=watch)
            with self.backend.atomic():
                try:
                    begun = self._begin(engine, input, config, tid)
                except ApprovalPending:  # recorded with this unit of work; the thread waits
                    begun = None
                first = worker.claim(tid)
            if begun is not None and scope.sink is not None:
                self._stream_step(scope, begun)
            watch.start = begun.step if begun is not None else engine.head(tid).step
            try:
                head = self._settle(worker, tid, first)
                if scope.sink is not None:
                    self._stream_stop(scope, head)
                return head
            except _LimitReached as stop:
                reason = str(GraphRecursionError(tid, limit, stop.step))
                engine.fail_thread(tid, reason, kind="GraphRecursionError")
                raise GraphRecursionError(tid, limit, stop.step) from None

    def _begin(
        self, engine: Engine, input: Any, config: Mapping[str, Any] | None, tid: str
    ) -> Checkpoint | None:
        """The step this call commits before running (None: it only runs what is queued)."""
        actor = Actor(kind="api", id="invoke")
        decision = decision_of(approver_in(config))
        head = self.backend.checkpoints.head_checkpoint(tid)
        at = self._past(tid, config, head)
        if isinstance(input, Command):
            if head is None:
                raise ThreadNotFound(tid)
            if input.targets():
                raise InvalidInput(
                    "Command(goto=...) is for a node's return value; to send a waiting "
                    "thread elsewhere use update_state(config, values, as_node=...)",
                    field="goto",
                )
            if at is not None:  # answer the interrupt of a past step: branch, then resume
                head = next_turn(engine, tid, None, kind="update", at=at, actor=actor)
            return self._resume_command(engine, head, input, actor, decision)
        if at is not None:
            kind: TurnKind = "input" if input is not None else "update"
            return next_turn(engine, tid, input, kind=kind, at=at, actor=actor)
        if head is None or input is not None:
            return new_input(engine, tid, input, head=head, answer=_ANSWER, actor=actor)
        if head.status == "suspended":
            return engine.resume(tid, actor=actor, decision=decision)
        if head.status == "failed" and head.error and head.error.type == "GraphRecursionError":
            return engine.resume(tid, actor=actor)  # a stop at the limit, not a fault
        return None

    def _resume_command(
        self,
        engine: Engine,
        head: Checkpoint,
        command: Command,
        actor: Actor,
        decision: Decision | None,
    ) -> Checkpoint:
        """`invoke(Command(resume=..., update=...))`: one value for the one pending interrupt,
        or `{interrupt id: value}` for several; `decision`: who decides (`approver_in`)."""
        values = normalise_update(command.update, node="Command.update") or None
        resume = partial(engine.resume, head.thread_id, values=values, actor=actor,
                         decision=decision)  # fmt: skip
        if command.resume is None:
            return resume()
        pending = self._pending(head)
        by_id = {p.interrupt.id: p for p in pending}
        mapping = resume_map(command.resume)
        if mapping is not None:
            unknown = [k for k in mapping if k not in by_id]
            if unknown:
                raise InvalidInput(
                    f"Command(resume=...) names interrupt ids {unknown} that are not pending; "
                    f"pending: {sorted(by_id)}",
                    field="resume",
                )
            answers: dict[str, Any] = {}
            for key, value in mapping.items():
                found = by_id[key]
                if found.inner_id is None:
                    answers[found.task_id] = value
                else:  # a subgraph's: its task gets one map {the subgraph's id: value}
                    answers.setdefault(found.task_id, {})[found.inner_id] = value
            return resume(resume_by_task=answers)
        if len(pending) > 1:
            raise InvalidInput(
                f"{len(pending)} interrupts are pending ({', '.join(sorted(by_id))}): resume "
                "them with Command(resume={interrupt_id: value, ...})",
                field="resume",
            )
        return resume(resume_value=command.resume, has_resume_value=True)

    def _past(
        self, tid: str, config: Mapping[str, Any] | None, head: Checkpoint | None
    ) -> Checkpoint | None:
        """The past checkpoint a config's `checkpoint_id` names (None: none, or the head)."""
        configurable = config.get("configurable") if isinstance(config, Mapping) else None
        wanted = configurable.get("checkpoint_id") if isinstance(configurable, Mapping) else None
        if wanted is None:
            return None
        if head is None:
            raise ThreadNotFound(tid)
        found = self._checkpoint(tid, wanted)
        return None if found.step == head.step else found

    def _checkpoint(self, tid: str, wanted: Any) -> Checkpoint:
        step, prefix = parse_checkpoint_id(wanted)
        found = self.backend.checkpoints.get_checkpoint(tid, step)
        if found is None:
            self.engine().head(tid)  # ThreadNotFound first, if that is the problem
            raise StepNotFound(tid, step)
        if not found.hash.startswith(prefix):
            raise InvalidInput(
                f"checkpoint_id {wanted!r} names step {step} of thread {tid!r} with another "
                f"hash ({found.hash[:16]}): it belongs to another thread or store",
                field="checkpoint_id",
            )
        return found

    # ------------------------------------------------------------ streaming

    def _stream_step(self, scope: RunScope, checkpoint: Checkpoint) -> None:
        """What a committed step gives the caller's stream: the state ("values") and
        LangGraph's "checkpoint" event ("debug")."""
        held = checkpoint.source == "node" and (
            checkpoint.status == "failed"
            or (checkpoint.interrupt is not None and checkpoint.interrupt.when == "during")
        )
        if "values" in scope.modes and not held:  # a held step changed no value (engine.build)
            scope.send("values", self.output(checkpoint, interrupts=False))
        if "debug" in scope.modes or "checkpoints" in scope.modes:
            snapshot = self.snapshot(checkpoint)
            waiting: dict[str, list[Interrupt]] = {}
            for pending in self._pending(checkpoint):
                waiting.setdefault(pending.task_id, []).append(pending.interrupt)
            namespace = "|".join(scope.namespace)
            payload = {
                "config": _in_namespace(snapshot.config, namespace),
                "parent_config": _in_namespace(snapshot.parent_config, namespace),
                "values": snapshot.values,
                "metadata": snapshot.metadata,
                "next": list(snapshot.next),
                "tasks": [
                    {
                        "id": t.id,
                        "name": t.node,
                        "interrupts": tuple(waiting.get(t.id, ())),
                        "state": None,
                    }
                    for t in checkpoint.next
                ],
            }
            scope.send("checkpoints", payload)
            scope.send("debug", debug_event("checkpoint", checkpoint.step, payload))

    def _stream_stop(self, scope: RunScope, head: Checkpoint) -> None:
        """The last chunks of a run that stopped inside a node: its pending interrupts."""
        interrupts = self.pending_interrupts(head)
        if interrupts:
            scope.send("updates", {"__interrupt__": list(interrupts)})
            scope.send("values", self.output(head))

    # ------------------------------------------------------------ interrupts, output

    def pending_interrupts(self, head: Checkpoint) -> tuple[Interrupt, ...]:
        """The `interrupt()` calls a suspended head waits on, each with its id: every one of
        a parallel step (their payloads are in the step's task results), else the one the
        head names."""
        return tuple(p.interrupt for p in self._pending(head))

    def _pending(self, head: Checkpoint) -> list[PendingInterrupt]:
        return pending_of(self.spec, self.backend, head)

    def output(self, checkpoint: Checkpoint, *, interrupts: bool = True) -> dict[str, Any]:
        """What `invoke` returns for a head: its values (messages as objects) and, when it
        waits in a node, `__interrupt__`."""
        values = self.spec.schema.output(self.engine().values_of(checkpoint))
        pending = self.pending_interrupts(checkpoint) if interrupts else ()
        if pending:
            values["__interrupt__"] = list(pending)
        return values

    def give_input(
        self,
        input: Mapping[str, Any] | None,
        *,
        thread_id: str,
        answer: str,
        actor: Actor | None = None,
        run: bool = True,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Checkpoint:
        """New input for `thread_id` (`durable-graph run`): its step 0, or the next turn of a
        thread that completed or failed (`turns.new_input`, which refuses a suspended or
        running one; `answer` says how this caller answers a pending decision). With `run`,
        the first task is leased in the same unit of work and the thread runs here until it
        completes or suspends; `ThreadFailed` if it fails."""
        worker = self.worker(on_outcome=on_outcome)
        with self.backend.atomic():
            head = self.backend.checkpoints.head_checkpoint(thread_id)
            begun = new_input(
                self.engine(), thread_id, input, head=head, answer=answer, actor=actor
            )
            first = worker.claim(thread_id) if run else []
        return self._settle(worker, thread_id, first) if run else begun

    def _settle(self, worker: Worker, thread_id: str, first: list[Delivery]) -> Checkpoint:
        store = self.backend.checkpoints
        ended: list[Checkpoint] = []

        def settled() -> bool:
            # The step this worker just committed, when it ended the run, is the head: a step
            # is written once and nothing follows a suspended, completed or failed one but a
            # resume, so no read is needed to know (a read stays for every other case).
            outcome = worker.stats.last
            last = outcome.checkpoint if outcome and outcome.kind == "committed" else None
            if last is not None and last.thread_id == thread_id and last.status != "running":
                ended.append(last)
                return True
            head = store.head_checkpoint(thread_id)
            return head is None or head.status != "running"

        worker.run(thread_id=thread_id, settled=settled, first_batch=first)
        head = ended[-1] if ended else self.engine().head(thread_id)
        if head.status == "failed":
            raise ThreadFailed(thread_id, head.step, head.error)
        return head

    def run_until_settled(
        self, thread_id: str, *, on_outcome: Callable[[Outcome], None] | None = None
    ) -> Checkpoint:
        """Work this thread's queued tasks in this process until it is no longer running;
        `ThreadFailed` if it ends failed."""
        return self._settle(self.worker(on_outcome=on_outcome), thread_id, [])

    def resume(
        self,
        thread_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        as_node: str | None = None,
        resume_value: Any = UNSET,
        expected_step: int | None = None,
        actor: Actor | None = None,
        run: bool = True,
        on_outcome: Callable[[Outcome], None] | None = None,
        approver: Approver | str | None = None,
        decision: str = "approve",
        via: str = "python",
    ) -> Checkpoint:
        """Inject a decision into a suspended thread (or retry a failed one) and, with `run`,
        run it here until it completes or suspends; `ThreadFailed` if it fails again.

        `approver`: who decides (an `Approver`, or a person's name this code vouches for),
        required where the interrupted node's `ApprovalRule` must know; the step is then
        theirs and commits every approval. An approval the rule needs more of is recorded and
        the suspended head returned (`status_document(...)["approvals"]` has the tally).
        `decision`: `approve`, or `reject` (a veto decides at once)."""
        worker = self.worker(on_outcome=on_outcome) if run else None
        with self.backend.atomic():
            try:
                checkpoint = self.engine().resume(
                    thread_id,
                    values=values,
                    as_node=as_node,
                    resume_value=None if resume_value is UNSET else resume_value,
                    has_resume_value=resume_value is not UNSET,
                    expected_step=expected_step,
                    actor=actor,
                    decision=decision_of(approver, decision=decision, via=via),
                )
            except ApprovalPending as pending:  # recorded (committed with this unit of work)
                return pending.head
            if worker is None or checkpoint.status != "running":
                return checkpoint
            first = worker.claim(thread_id)
        return self._settle(worker, thread_id, first)

    def update_state(
        self,
        config: Mapping[str, Any] | str | None,
        values: Mapping[str, Any] | None,
        as_node: str | None = None,
        *,
        expected_step: int | None = None,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        """Write `values` as if `as_node` had run (LangGraph's `update_state`); does not run the
        next tasks: call `invoke(None, config)` with the config it returns (or the thread's
        own: the written step is the thread's head), or let a worker pick them up.

        On a completed thread, or with a `checkpoint_id` of a past step in `config`, the update
        is the thread's next turn: written on that step's state, continuing from `as_node`'s
        edges (or that step's pending tasks), as LangGraph's branch from a past checkpoint.

        Returns LangGraph's config of the written checkpoint: `{"configurable": {"thread_id",
        "checkpoint_ns", "checkpoint_id"}}` (`get_state(config).checkpoint` is the record)."""
        tid = thread_id_of(config, None)
        engine = self.engine()
        head = engine.head(tid)
        at = self._past(tid, config if isinstance(config, Mapping) else None, head)
        if at is not None or head.status == "completed":
            written = next_turn(
                engine,
                tid,
                values,
                kind="update",
                at=at,
                as_node=as_node,
                actor=actor or Actor(kind="api", id="update_state"),
                expected_step=expected_step,
            )
        else:
            written = self.resume(
                tid,
                values=values,
                as_node=as_node,
                expected_step=expected_step,
                actor=actor,
                run=False,
                approver=approver_in(config if isinstance(config, Mapping) else None),
            )
        return config_for(written, tid)

    # ---------------------------------------------------------------- reading

    def snapshot(self, checkpoint: Checkpoint, *, subgraphs: bool = False) -> StateSnapshot:
        """`checkpoint` as a user reads it; `subgraphs`: each task that runs a subgraph
        carries the subgraph's snapshot (else its config), as LangGraph's."""
        values = self.engine().values_of(checkpoint)
        return snapshot_of(self.spec, self.backend, checkpoint, values, subgraphs=subgraphs)

    def get_state(
        self,
        config: Mapping[str, Any] | str | None,
        step: int | None = None,
        *,
        subgraphs: bool = False,
    ) -> StateSnapshot:
        """The head's snapshot, or step `step`'s, or the step the config's `checkpoint_id`
        names. `subgraphs=True`: a task that runs a subgraph carries the subgraph's snapshot
        in `tasks[i].state` (else its config), as in LangGraph."""
        tid = thread_id_of(config, None)
        configurable = config.get("configurable") if isinstance(config, Mapping) else None
        wanted = configurable.get("checkpoint_id") if isinstance(configurable, Mapping) else None
        if step is None and wanted is not None:
            checkpoint = self._checkpoint(tid, wanted)
        elif step is None:
            checkpoint = self.engine().head(tid)
        else:
            found = self.backend.checkpoints.get_checkpoint(tid, step)
            if found is None:
                self.engine().head(tid)  # ThreadNotFound first, if that is the problem
                raise StepNotFound(tid, step)
            checkpoint = found
        return self.snapshot(checkpoint, subgraphs=subgraphs)

    def get_state_history(
        self,
        config: Mapping[str, Any] | str | None,
        *,
        limit: int | None = None,
        before: int | Mapping[str, Any] | None = None,
        node: str | None = None,
        source: str | None = None,
    ) -> list[StateSnapshot]:
        """Newest first; `before` (a step, or a config with a `checkpoint_id`, as LangGraph
        takes it) pages back, `node`/`source` filter."""
        tid = thread_id_of(config, None)
        if isinstance(before, Mapping):
            before = self._checkpoint(
                tid, dict(before.get("configurable") or {}).get("checkpoint_id", "")
            ).step
        records = reading.history(
            self.backend, tid, limit=limit, before=before, node=node, source=source
        )
        return [self.snapshot(r) for r in records]


def _modes(stream_mode: str | Sequence[str]) -> list[str]:
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown or not modes:
        raise InvalidInput(
            f"stream_mode {unknown or modes!r}: supported modes are {', '.join(STREAM_MODES)}",
            field="stream_mode",
        )
    return list(dict.fromkeys(modes))


def _in_namespace(config: dict[str, Any] | None, namespace: str) -> dict[str, Any] | None:
    """A snapshot's config as seen from a stream: its `checkpoint_ns` is the namespace the
    run streams under (a subgraph's `"node:task id"`)."""
    if config is None or not namespace:
        return config
    return {"configurable": {**config["configurable"], "checkpoint_ns": namespace}}


def _caller_module() -> str:
    frame = sys._getframe(3) if hasattr(sys, "_getframe") else None
    return str(frame.f_globals.get("__name__", "graph")) if frame else "graph"
