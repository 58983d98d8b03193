"""The chunks a step wrote before its conditional append, when the append then lost: no record
refers to them and none ever will, so they are deleted (`docs/record-format.md` §12).

Sealing a step writes its chunks to the payload store first (a change's chunk, and an io
response, interrupt payload, resume value or task argument kept whole, `part_chunks.chunked_part`),
then the record is appended conditionally. When another writer's record of the same step won
(`StepConflict`: two workers raced on one message, a start onto a taken id, a resume that lost
its race), the loser's chunks are unreferenced. Each was sealed under a fresh random salt (and,
with encryption on, a fresh nonce), so its address is its own: no other record, thread or step
can name it — unless the winner *is* this record (a retried append of our own write), which
`lost_chunks` checks by hash. What a sealing wrote is carried by the record it sealed
(`Checkpoint.fresh`, set by `step_sealer.py`, never stored); chunks it did not write (a `keep` by
reference, a task list addressed by content, a resume value or task argument carried over from
an earlier record) are never in it.

A fan-out task's result row (`done#`, `fanin.py`) is the same: its chunks are named by that row
alone, and a task whose row was created by a racing duplicate deletes its own.

A process that may not delete payload objects (`Backend.deletes_payloads`: the AWS worker, whose
role leaves deleting to erasure) leaves them instead (`let_go`, `Backend.leftovers`), and the
sweeper, which may, deletes them later (`leftovers.py`): the one path (`disposal.py`) the
snapshot segments a merge retired take too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.disposal import Disposal
from durable_graph.payloads import collect_refs


def lost_chunks(lost: Checkpoint, winner: Checkpoint | None) -> list[PayloadRef]:
    """The payload chunks a sealed record wrote that nothing can refer to once it lost its
    conditional append to `winner`: the chunks of its `set`, `add` and `merge` changes and
    the whole-part chunks its sealing wrote (`Checkpoint.fresh`), less any the winner names.
    None when the winner is this very record (a retried append of our own write), or unknown.
    Never a `keep` (it may point at an earlier step's chunk), nor a task or io list
    (addressed by content without a salt: another record may hold the same bytes)."""
    if winner is None or winner.hash == lost.hash:
        return []
    theirs = _named_by(winner)
    mine = [
        c.ref
        for c in lost.changes.values()
        if c.op in ("set", "add", "merge") and c.ref is not None
    ]
    return [ref for ref in [*mine, *lost.fresh] if ref.sha256 not in theirs]


def _named_by(record: Checkpoint) -> set[str]:
    """The digests of the objects `record` names in the clear: its change chunks and its whole
    parts (none is ever one of ours while salts are random; checked all the same)."""
    parts: list[Any] = [record.interrupt.payload if record.interrupt is not None else None]
    parts += [v for values in record.resume.values() for v in values]
    parts += [io.response for io in record.io]
    parts += [task.arg for task in record.next]
    named = set(collect_refs(parts))
    return named | {c.ref.sha256 for c in record.changes.values() if c.ref is not None}


def disposal(backend: Backend) -> Disposal:
    """Where this process's unreferenced payloads go (`disposal.py`)."""
    return Disposal(backend.payloads, backend.deletes_payloads, backend.leftovers)


def may_let_go(backend: Backend) -> bool:
    """Whether this process deletes a lost append's chunks or leaves them to one that may."""
    return disposal(backend).active


def let_go(
    backend: Backend,
    refs: Sequence[PayloadRef],
    what: str,
    *,
    thread_id: str,
    step: int | None = None,
    row: str | None = None,
) -> None:
    """The one way a lost append's chunks go (`Disposal.let_go`): deleted where this process
    may delete payloads, else left in `Backend.leftovers` (named by the `step` or result `row`
    of `thread_id` that lost) for one that may."""
    disposal(backend).let_go(refs, what, thread_id=thread_id, step=step, row=row, kind="lost")


__all__ = ["disposal", "let_go", "lost_chunks", "may_let_go"]
