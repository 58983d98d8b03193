"""The seed's approval flow as the benchmarks drive it: one thread at a time as a caller runs
it (`run_flow`: `invoke` until it suspends, then `resume` approving), or a wave at a time
(`run_wave`): every thread of the wave in flight through one worker, so that its steps commit
together (`Worker.handle_group`: one transaction, one fsync, and one signature over the heads
it settles, `signing.batch_signatures`).

One sequence each for all that drive them: the rows of `approval_throughput.py` and its
storage floor (`statement_floor.py`), the counts of `approval_instructions.py`,
`txn_breakdown.py`, `encryption_overhead.py`, and the ledger's batch-signature tests. They
call only the public API (`start`, `resume(run=False)`, `Worker.run`), so a bench child
running an older checkout's durable-graph (`--previous`) runs it too: that child finds this
module on this checkout's root, after the older checkout's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from durable_graph.runtime import CompiledGraph
    from durable_graph.worker import Worker


def wave_worker(app: CompiledGraph, in_flight: int) -> Worker:
    """A worker that leases a whole wave of `in_flight` threads and runs their tasks in turn
    on its own thread: the flow's nodes wait on no network, and on a pool they only took
    turns at the interpreter's and the connection's locks."""
    try:
        return app.worker(concurrency=in_flight, threads=1)
    except TypeError:  # a release before `threads` (`--previous`): a pool of `in_flight`
        return app.worker(concurrency=in_flight)


def run_flow(app: CompiledGraph, thread_id: str, prompt: str) -> None:
    """Thread `thread_id` from start to completion, as a caller runs it: `invoke` with
    `prompt` until it suspends at `human_review`, then `resume` it approved, to the end."""
    app.invoke({"user_prompt": prompt}, thread_id=thread_id)
    app.resume(thread_id, values={"approved": True}, as_node="human_review")


def run_wave(app: CompiledGraph, worker: Worker, ids: Sequence[str]) -> None:
    """Threads `ids` from start to completion: their starts in one unit of work, the
    worker's drafts (suspending every thread, in one group commit), their approvals in one
    unit of work, the worker's sends (completing them, in another)."""
    backend = app.backend
    with backend.atomic():
        for tid in ids:
            app.start({"user_prompt": f"pay supplier {tid}"}, thread_id=tid)
    worker.run(until_idle=True)
    with backend.atomic():
        for tid in ids:
            app.resume(tid, values={"approved": True}, as_node="human_review", run=False)
    worker.run(until_idle=True)
