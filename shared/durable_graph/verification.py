"""Load a thread's records robustly (a record altered into garbage still gets a step number)
and verify them with the ledger."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import CorruptRecord
from durable_graph.ledger import VerifyReport, verify_chain


def verify_thread(backend: Backend, thread_id: str) -> VerifyReport:
    store = backend.checkpoints
    try:
        records = store.list_checkpoints(thread_id, newest_first=False)
    except CorruptRecord:
        records = []
        step = 0
        misses = 0
        while misses < 3:
            try:
                record: Checkpoint | None = store.get_checkpoint(thread_id, step)
            except CorruptRecord as exc:
                report = verify_chain(thread_id, records, backend.payloads)
                if report.ok or (report.first_bad_step or 0) > exc.step:
                    return VerifyReport(
                        thread_id,
                        ok=False,
                        checked=len(records) + 1,
                        first_bad_step=exc.step,
                        check="parse",
                        reason=f"step {exc.step}: parse: {exc}",
                        problems=[{"step": exc.step, "check": "parse", "reason": str(exc)}],
                    )
                return report
            if record is None:
                misses += 1
            else:
                misses = 0
                records.append(record)
            step += 1
    return verify_chain(thread_id, records, backend.payloads)
