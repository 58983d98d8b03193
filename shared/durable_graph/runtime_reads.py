"""What a caller reads of a compiled graph's threads: a step as LangGraph's `StateSnapshot`
(`get_state`, `get_state_history`), the values `invoke` returns, and the interrupts a suspended
head waits on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_graph import reading
from durable_graph.backends.lazy_state import lazy_record
from durable_graph.checkpoint import Checkpoint
from durable_graph.commands import Interrupt
from durable_graph.errors import InvalidInput, StepNotFound, ThreadNotFound
from durable_graph.run_config import checkpoint_id_in, thread_id_of
from durable_graph.runtime_binding import GraphBinding
from durable_graph.views import (
    PendingInterrupt,
    StateSnapshot,
    lazy_snapshot_of,
    lazy_values_snapshot_of,
    parse_checkpoint_id,
    pending_of,
    snapshot_of,
)


class GraphReads(GraphBinding):
    """Reading a thread: snapshots, the output of a head, its pending interrupts."""

    def snapshot(self, checkpoint: Checkpoint, *, subgraphs: bool = False) -> StateSnapshot:
        """`checkpoint` as a user reads it; `subgraphs`: each task that runs a subgraph
        carries the subgraph's snapshot (else its config), as LangGraph's."""
        values = self.engine().values_of(checkpoint)
        return snapshot_of(self.spec, self.backend, checkpoint, values, subgraphs=subgraphs)

    def head_snapshot(self, thread_id: str, *, subgraphs: bool = False) -> StateSnapshot:
        """The head's snapshot from its row alone: its state is read on first use of its
        `values` (`views.StateSnapshot`), so checking `next` or `config` of a long thread
        reads one row."""
        engine = self.engine()
        head, materialise = reading.lazy_head_of(self.backend, thread_id)

        def read() -> tuple[Checkpoint, dict[str, Any]]:
            checkpoint = materialise()
            return checkpoint, engine.values_of(checkpoint)

        return lazy_snapshot_of(self.spec, self.backend, head, read, subgraphs=subgraphs)

    def get_state(
        self,
        config: Mapping[str, Any] | str | None,
        step: int | None = None,
        *,
        subgraphs: bool = False,
        lazy: bool = False,
    ) -> StateSnapshot:
        """The head's snapshot, or step `step`'s, or the step the config's `checkpoint_id`
        names. `subgraphs=True`: a task that runs a subgraph carries the subgraph's snapshot
        in `tasks[i].state` (else its config), as in LangGraph.

        `lazy=True` (not in LangGraph): `values` is a read-only mapping whose fields are read
        on first access, a list field a `collections.abc.Sequence` (not a `list`) that knows
        its length without its items and fetches only the snapshot segments an index, slice
        or iteration touches (`lazy_values.py`, `docs/record-format.md` §7, §12). For the
        tail of a long history: `get_state(config, lazy=True).values["messages"][-20:]`.

        Example:
            >>> snap = app.get_state("chat-1", lazy=True)  # doctest: +SKIP
            >>> len(snap.values["messages"]), snap.values["messages"][-1]  # doctest: +SKIP
            (10000, 'turn 9999: ...')
        """
        tid = thread_id_of(config, None)
        wanted = checkpoint_id_in(config)
        if lazy:
            return self._lazy_state(tid, step, wanted, subgraphs=subgraphs)
        if step is None and wanted is not None:
            checkpoint = self._checkpoint(tid, wanted)
        elif step is None:
            return self.head_snapshot(tid, subgraphs=subgraphs)
        else:
            found = self.backend.checkpoints.get_checkpoint(tid, step)
            checkpoint = self._found(tid, step, step, "", found)
        return self.snapshot(checkpoint, subgraphs=subgraphs)

    def _lazy_state(
        self, tid: str, step: int | None, wanted: Any, *, subgraphs: bool
    ) -> StateSnapshot:
        """`get_state(..., lazy=True)`: the record found as the eager read finds it (the same
        errors), its values read field by field (`backends/lazy_state.py`)."""
        prefix = ""
        if step is None and wanted is not None:
            step, prefix = parse_checkpoint_id(wanted)
        found = lazy_record(self.backend.checkpoints, tid, step)
        if found is None and step is None:
            raise ThreadNotFound(tid)
        if step is not None:
            self._found(tid, step, wanted, prefix, found[0] if found is not None else None)
        assert found is not None  # else `_found` raised
        record, source = found
        return lazy_values_snapshot_of(self.spec, self.backend, record, source, subgraphs=subgraphs)

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

    def _checkpoint(self, tid: str, wanted: Any) -> Checkpoint:
        step, prefix = parse_checkpoint_id(wanted)
        return self._found(
            tid, step, wanted, prefix, self.backend.checkpoints.get_checkpoint(tid, step)
        )

    def _found(
        self, tid: str, step: int, wanted: Any, prefix: str, found: Checkpoint | None
    ) -> Checkpoint:
        """The record a read asked for, or the error that says why there is none (the thread
        unknown, the step not there, a `checkpoint_id` of another record)."""
        if found is None:
            self.engine().head(tid)  # ThreadNotFound first, if that is the problem
            raise StepNotFound(tid, step)
        if prefix and not found.hash.startswith(prefix):
            raise InvalidInput(
                f"checkpoint_id {wanted!r} names step {step} of thread {tid!r} with another "
                f"hash ({found.hash[:16]}): it belongs to another thread or store",
                field="checkpoint_id",
            )
        return found

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
