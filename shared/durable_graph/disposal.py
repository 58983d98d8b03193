"""The one way a process lets go of payload objects that no record it wrote names: deleted where
its credentials may delete payloads, else left in `ports.leftovers` for one that may (the AWS
sweeper, `leftovers.py`); a failure costs storage, never correctness (logged).

Two kinds of objects come here (`ports.leftovers`): the chunks of a step or task result that
lost its conditional append (`orphans.py`, `kind="lost"`), and the snapshot segments a merge
replaced once its step is committed (`backends/segment_runs.py`, `kind="retired"`). The AWS
worker, S3-start and DLQ functions may not delete payloads (deleting is erasure's and the
sweeper's), so they leave both; every embedded, PostgreSQL and memory process deletes at once.

Below `backend.py` (it names no `Backend`), so the record store can use it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import DurableGraphError
from durable_graph.ports.leftovers import LeftoverKind, Leftovers
from durable_graph.ports.payload_store import PayloadStore

log = logging.getLogger("durable_graph.engine")  # the engine's log, as operators filter it


@dataclass(frozen=True)
class Disposal:
    """Where a process's unreferenced payloads go: `deletes` whether it may delete them;
    `leftovers` where it leaves them otherwise (None: nowhere, they stay unrecorded)."""

    payloads: PayloadStore
    deletes: bool = True
    leftovers: Leftovers | None = None

    @property
    def active(self) -> bool:
        """Whether letting go does anything here (worth finding what to let go)."""
        return self.deletes or self.leftovers is not None

    def let_go(
        self,
        refs: Sequence[PayloadRef],
        what: str,
        *,
        thread_id: str,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        """Delete `refs`, or leave them (named by the `step` or result `row` of `thread_id`
        they belong to, and by `kind`) for a process that may."""
        if not refs:
            return
        if self.deletes:
            discard(self.payloads, refs, what)
            return
        if self.leftovers is None:
            return
        try:
            self.leftovers.leave(thread_id, refs, step=step, row=row, kind=kind)
        except DurableGraphError as exc:
            log.warning("%d objects of %s left behind, unrecorded: %s", len(refs), what, exc)


def discard(payloads: PayloadStore, refs: Sequence[PayloadRef], what: str) -> None:
    """Delete `refs`; a delete that fails leaves it and the rest (logged once): an unreferenced
    object costs storage, never correctness."""
    for index, ref in enumerate(refs):
        try:
            payloads.delete(ref)
        except DurableGraphError as exc:
            log.warning("%d objects of %s left behind: %s", len(refs) - index, what, exc)
            return


__all__ = ["Disposal", "discard"]
