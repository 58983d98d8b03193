"""The commit point of a step (DESIGN.md §3): `Committer.commit` is the one place a step is
appended and a lost append (`StepConflict`) handled. `Engine.commit` is it; start, resume,
fork, a recorded failure, a worker's step or group commit and a thread's next turn (turns.py)
all come through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, Status
from durable_graph.errors import StepConflict
from durable_graph.followups import FollowUps
from durable_graph.orphans import let_go, lost_chunks, may_let_go
from durable_graph.ports.commit_writes import RecordWrite

log = logging.getLogger("durable_graph.engine")  # the engine's log, as operators filter it


@dataclass(frozen=True)
class Outcome:
    """What handling one message did; the worker loop and Lambda handler log and count it."""

    kind: Literal["committed", "duplicate", "pending", "stale"]
    checkpoint: Checkpoint | None = None
    progress: tuple[int, int] | None = None  # a fan-out's tasks done of its total, when pending


class Committer:
    """Commits the steps of one backend, with their follow-ups."""

    def __init__(self, backend: Backend, followups: FollowUps) -> None:
        self.backend = backend
        self.followups = followups

    def commit(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        finalize: Callable[[], None] | None = None,
        refuse: Callable[[Checkpoint | None], Exception] | None = None,
        signature: RecordWrite | None = None,
    ) -> Outcome:
        """The commit point, the one path every write of a step takes: one conditional
        append, with the thread head and the head signature written with it
        (`FollowUps.prepare`; `signature`: one made beforehand, with a batch's), then the
        idempotent follow-ups, in the backend's unit of work.

        When the step already exists, a worker's redelivery treats it as done (re-sends the
        winner's follow-ups); a caller that must not lose silently (start, resume, fork, a
        next turn) passes `refuse`, which turns the winner into the error to raise.
        """
        prepared = self.followups.prepare(
            checkpoint, previous_status=previous_status, signature=signature
        )
        lost, winner = False, None
        try:
            with self.backend.atomic():
                try:
                    self.backend.checkpoints.append_checkpoint(checkpoint, prepared.writes)
                except StepConflict as conflict:
                    existing = conflict.existing
                    winner = existing if isinstance(existing, Checkpoint) else None
                    lost = True
                    if refuse is not None:
                        raise refuse(winner) from conflict
                    if winner is not None:
                        self.followups.resend_if_head(winner)
                    if finalize is not None:
                        finalize()
                    return Outcome("duplicate", winner)
                self.followups.after_commit(
                    checkpoint, previous_status=previous_status, prepared=prepared
                )
                if finalize is not None:
                    finalize()
        finally:
            if lost:  # once the unit of work is over: a refusal rolls it back, deletes too
                self._discard(checkpoint, winner)
        if log.isEnabledFor(logging.INFO):  # the extra, built only for a log that keeps it
            log.info(
                "step committed",
                extra={
                    "thread_id": checkpoint.thread_id,
                    "step": checkpoint.step,
                    "status": checkpoint.status,
                    "nodes": checkpoint.nodes,
                },
            )
        return Outcome("committed", self.backend.checkpoints.opened(checkpoint))

    def _discard(self, lost: Checkpoint, winner: Checkpoint | None) -> None:
        """Delete the chunks a step that lost its append had written (a worker's duplicate,
        a start onto a taken id, a resume that lost its race): no record refers to them, and
        none ever will (`orphans.lost_chunks`). Where this process may not delete payloads
        (`Backend.deletes_payloads`: the AWS worker's role, erasure's alone) they are left to
        the sweeper (`orphans.let_go`)."""
        if not may_let_go(self.backend):
            return
        what = f"step {lost.step} of {lost.thread_id!r}, which lost its append"
        refs = lost_chunks(lost, winner)
        let_go(self.backend, refs, what, thread_id=lost.thread_id, step=lost.step)


__all__ = ["Committer", "Outcome"]
