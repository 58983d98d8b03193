"""The ledger's record-level checks: transitions and fork origins, on hand-made chains."""

from __future__ import annotations

from durable_graph.checkpoint import Checkpoint, ParentRef
from durable_graph.ledger import verify_chain
from durable_graph.ledger_report import LedgerEvidence
from durable_graph.runtime import CompiledGraph
from tests.ledger.conftest import THREAD


def reseal(records: list[Checkpoint], index: int, **update: object) -> list[Checkpoint]:
    """Change record `index` and re-link everything after it, as a knowledgeable forger."""
    out = list(records[:index])
    for record in records[index:]:
        fields = dict(update) if record.step == records[index].step else {}
        if out:
            previous = out[-1]
            fields["prev_hash"] = previous.hash
            fields["parent"] = ParentRef(
                thread_id=record.thread_id, step=previous.step, hash=previous.hash
            )
        out.append(record.model_copy(update=fields).sealed())
    return out


def test_an_honest_run_passes_every_record_check(chat: CompiledGraph) -> None:
    records = chat.backend.checkpoints.list_checkpoints(THREAD, newest_first=False)
    assert verify_chain(THREAD, records, chat.backend.payloads).ok


def test_a_decision_without_a_suspension_is_an_illegal_transition(chat: CompiledGraph) -> None:
    """Given a forger who turns a node step into a human update (and re-links the chain), then
    every hash and link holds but `transition` names that step."""
    records = chat.backend.checkpoints.list_checkpoints(THREAD, newest_first=False)
    forged = reseal(records, 3, source="update")
    report = verify_chain(THREAD, forged, None)
    assert (report.first_bad_step, report.check) == (3, "transition")
    assert "only after a suspension" in str(report.reason)


def test_a_second_decision_for_one_interrupt_is_illegal(chat: CompiledGraph) -> None:
    """Given the decision at step 7, when a forger turns step 8 into a second decision, then
    `transition` names step 8: one decision per interrupt."""
    records = chat.backend.checkpoints.list_checkpoints(THREAD, newest_first=False)
    report = verify_chain(THREAD, reseal(records, 8, source="update"), None)
    assert (report.first_bad_step, report.check) == (8, "transition")


def test_nothing_may_follow_a_completed_step(chat: CompiledGraph) -> None:
    records = chat.backend.checkpoints.list_checkpoints(THREAD, newest_first=False)
    extra = (
        records[-1]
        .model_copy(
            update={
                "step": 9,
                "prev_hash": records[-1].hash,
                "parent": ParentRef(thread_id=THREAD, step=8, hash=records[-1].hash),
            }
        )
        .sealed()
    )
    report = verify_chain(THREAD, [*records, extra], None)
    assert (report.first_bad_step, report.check) == (9, "transition")


def test_a_fork_must_link_to_an_origin_that_still_has_its_hash(chat: CompiledGraph) -> None:
    """Given a fork's step 0, then it verifies against its origin record, and fails `origin`
    when the origin given no longer hashes to what the fork recorded."""
    from durable_graph.timetravel import fork

    forked = fork(chat, THREAD, 4, "c1-fork")
    origin = chat.backend.checkpoints.get_checkpoint(THREAD, 4)
    assert origin is not None
    good = verify_chain("c1-fork", [forked], chat.backend.payloads, LedgerEvidence(origin=origin))
    assert good.ok and not good.notes
    altered = origin.model_copy(update={"status": "failed"})
    bad = verify_chain("c1-fork", [forked], None, LedgerEvidence(origin=altered))
    assert (bad.first_bad_step, bad.check) == (0, "origin")
    unknown = verify_chain("c1-fork", [forked], None)
    assert unknown.ok and "not checked" in unknown.notes[0]
