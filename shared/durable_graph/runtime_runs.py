"""The run loop of a compiled graph: commit what the call asks and lease the first task in one
unit of work, run the thread here until it stops, stop it at `recursion_limit`, and give the
caller's stream each committed step (`invoke`, `ainvoke`, and a subgraph's `run_scoped`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from durable_graph.checkpoint import Checkpoint
from durable_graph.commands import Interrupt
from durable_graph.engine import Outcome
from durable_graph.errors import GraphRecursionError
from durable_graph.run_config import recursion_limit_of, thread_id_of
from durable_graph.runs import RunScope, running
from durable_graph.runtime_inputs import GraphInputs
from durable_graph.signoff import ApprovalPending, Decision
from durable_graph.streaming import debug_event


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


class GraphRuns(GraphInputs):
    """Running a thread here, with the caller's recursion limit and stream."""

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

    def run_scoped(
        self,
        input: Any,
        config: Mapping[str, Any] | None,
        *,
        thread_id: str,
        scope: RunScope,
        decision: Decision | None = None,
    ) -> Checkpoint:
        """Run like `invoke` under a caller's `scope` (a subgraph streaming into its parent's
        stream); the head it stopped at. `decision`: the approvals its parent's resume
        committed (`subgraphs._handed_down`)."""
        return self._run(input, config, thread_id, scope, None, decision)

    def _run(
        self,
        input: Any,
        config: Mapping[str, Any] | None,
        tid: str,
        scope: RunScope,
        on_outcome: Callable[[Outcome], None] | None,
        decision: Decision | None = None,
    ) -> Checkpoint:
        """Commit what the call asks (start, next turn, resume) and lease the first task in
        one unit of work (one transaction when embedded), then run the thread here.

        That commit is durable on its own, not held back to commit with the first task's step
        (one fsync fewer per thread): held, the task would run from a step no one else can
        see or take over, so a crash inside it would lose the started thread (or the
        approval) instead of leaving it to another worker, a second start of the same id
        would run the node too instead of being refused, and a racing approver's node would
        run on a decision that never commits."""
        limit = recursion_limit_of(config)
        engine = self.engine()
        watch = _RunWatch(tid, limit, scope, self._stream_step, on_outcome)
        with running(tid, scope):
            worker = self.worker(on_outcome=watch)
            # The first task is leased to this worker as the step is committed (no receive).
            with self.backend.atomic(), worker.inline(tid) as first:
                try:
                    begun = self._begin(engine, input, config, tid, decision)
                except ApprovalPending:  # recorded with this unit of work; the thread waits
                    begun = None
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
                worker.give_back()  # its next task, leased ahead, is stale now: free the queue
                raise GraphRecursionError(tid, limit, stop.step) from None

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


def _in_namespace(config: dict[str, Any] | None, namespace: str) -> dict[str, Any] | None:
    """A snapshot's config as seen from a stream: its `checkpoint_ns` is the namespace the
    run streams under (a subgraph's `"node:task id"`)."""
    if config is None or not namespace:
        return config
    return {"configurable": {**config["configurable"], "checkpoint_ns": namespace}}
