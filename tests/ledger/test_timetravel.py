"""Time travel: paginated history, diff, fork, replay."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor
from durable_graph.errors import StepNotFound, ThreadExists, ThreadNotFound
from durable_graph.runtime import CompiledGraph
from durable_graph.timetravel import diff, fork, replay
from durable_graph.verification import verify_thread
from tests.ledger.conftest import THREAD
from tests.ledger.graphs import changed, unrecorded


def test_history_pages_newest_first_and_filters_by_node_and_source(chat: CompiledGraph) -> None:
    """Given 9 steps, then pages of 4 walk back without overlap, and filters pick steps by the
    node that ran or by who wrote them."""
    first = chat.get_state_history(THREAD, limit=4)
    second = chat.get_state_history(THREAD, limit=4, before=first[-1].step)
    last = chat.get_state_history(THREAD, limit=4, before=second[-1].step)
    assert [s.step for s in first + second + last] == list(range(8, -1, -1))
    assert [s.step for s in chat.get_state_history(THREAD, node="review")] == [8]
    assert [s.step for s in chat.get_state_history(THREAD, source="update")] == [7]
    assert [s.step for s in chat.get_state_history(THREAD, node="reply", limit=2)] == [6, 5]
    assert [s.step for s in chat.get_state_history(THREAD, node="reply", before=3)] == [2, 1]
    assert len(first[0].values["messages"]) == 6  # full state, rebuilt from deltas


def test_diff_shows_appends_changes_and_payloads_by_digest(chat: CompiledGraph) -> None:
    """Given steps 5 and 8, then `messages` shows only the appended turn, `approved` old and
    new, and the unchanged attachment is not listed; step 0 vs a fork shows the payload ref."""
    doc = diff(chat.backend, THREAD, 5, 8)
    changes = {c["field"]: c for c in doc["changes"]}
    assert changes["messages"]["change"] == "appended"
    assert changes["messages"]["appended"] == [chat.get_state(THREAD).values["messages"][-1]]
    assert (changes["messages"]["old_length"], changes["messages"]["new_length"]) == (5, 6)
    assert changes["approved"] == {
        "field": "approved",
        "change": "changed",
        "old": None,
        "new": True,
    }
    assert (
        "attachment" in doc["unchanged"]
        and doc["a"]["step"] == 5
        and doc["b"]["status"] == "completed"
    )
    fork(chat, THREAD, 0, "c1-other", {"attachment": "B" * 9000})
    shown = diff(chat.backend, THREAD, 0, 0, thread_b="c1-other")["changes"][0]
    assert shown["field"] == "attachment"
    assert (
        shown["old"]["payload"]["size"] == 10_000 and len(shown["old"]["payload"]["sha256"]) == 64
    )
    fetched = diff(chat.backend, THREAD, 0, 0, thread_b="c1-other", fetch=True)["changes"][0]
    assert fetched["old"] == "A" * 10_000 and fetched["new"] == "B" * 9000


def test_diff_of_unknown_steps_is_a_clear_error(chat: CompiledGraph) -> None:
    with pytest.raises(StepNotFound):
        diff(chat.backend, THREAD, 0, 99)
    with pytest.raises(ThreadNotFound):
        diff(chat.backend, "nope", 0, 1)


def test_fork_records_its_origin_runs_like_any_thread_and_verifies(chat: CompiledGraph) -> None:
    """Given a fork of step 3 with a changed limit, then its step 0 names (thread, step, hash),
    the thread record shows the lineage, it runs on to its own suspension and completion, and
    both it and its origin verify (the fork's link checked against the origin record)."""
    origin = chat.get_state(THREAD, step=3).checkpoint
    start = fork(chat, THREAD, 3, "c1-b", {"limit": 4}, actor=Actor(kind="human", id="bob"))
    assert start.source == "fork" and start.step == 0 and start.prev_hash == origin.hash
    assert start.parent is not None
    assert (start.parent.thread_id, start.parent.step, start.parent.hash) == (
        THREAD,
        3,
        origin.hash,
    )
    record = chat.backend.checkpoints.get_thread("c1-b")
    assert record is not None and record.origin == start.parent
    chat.run_until_settled("c1-b")
    suspended = chat.get_state("c1-b")
    assert suspended.status == "suspended" and suspended.values["turns"] == 4
    assert len(suspended.values["messages"]) == 4
    chat.resume("c1-b", values={"approved": False}, actor=Actor(kind="human", id="carol"))
    assert chat.get_state("c1-b").values["note"] == "rejected"
    assert chat.get_state(THREAD).values["note"] == "reviewed"  # the origin is untouched
    report = verify_thread(chat.backend, "c1-b")
    assert report.ok and report.signed_steps == [1, 3] and not report.notes


def test_fork_of_a_suspended_step_waits_for_its_own_decision(chat: CompiledGraph) -> None:
    start = fork(chat, THREAD, 6, "c1-wait")
    assert start.status == "suspended" and start.interrupt is not None
    assert start.interrupt.node == "review"


def test_fork_refuses_existing_threads_and_missing_steps(chat: CompiledGraph) -> None:
    with pytest.raises(ThreadExists):
        fork(chat, THREAD, 1, THREAD)
    with pytest.raises(StepNotFound):
        fork(chat, THREAD, 42, "c1-z")
    assert chat.backend.checkpoints.head_checkpoint("c1-z") is None


def test_replay_reproduces_a_node_from_its_recorded_llm_answer(chat: CompiledGraph) -> None:
    """Given step 4 (a `reply` that recorded its LLM call), when replayed, then the node is fed
    the recorded answer and reproduces the update and the routing decision."""
    report = replay(chat, THREAD, 4)
    assert report.verdict == "reproduced" and report.reproducible
    assert report.state_matches and report.routing_matches and report.status_matches
    assert [(t.recorded_inputs, t.used_inputs) for t in report.tasks] == [(1, 1)]
    routed = replay(chat, THREAD, 6)  # the turn whose router chose `review` (and suspended)
    assert routed.verdict == "reproduced" and routed.routing_matches


def test_replay_of_a_node_without_recorded_inputs(chat: CompiledGraph) -> None:
    """Given `review` (no external calls), then it reproduces from the state alone, and says so."""
    report = replay(chat, THREAD, 8)
    assert report.verdict == "reproduced" and "no external inputs" in report.reason


def test_replay_says_when_changed_code_diverges_from_the_record(
    chat: CompiledGraph, backend: Backend
) -> None:
    """Given a node whose code changed since (same graph version), when its step is replayed
    with the recorded LLM answer, then the verdict is `diverged` and `messages` is named."""
    report = replay(changed.with_backend(backend), THREAD, 4)
    assert report.verdict == "diverged" and not report.reproducible
    assert [d["field"] for d in report.differences if d["what"] == "field"] == ["messages"]


def test_replay_refuses_to_vouch_for_unrecorded_calls(
    chat: CompiledGraph, backend: Backend
) -> None:
    """Given a node that reaches the outside world without the context, then replay reports
    `not_reproducible: the node recorded no external inputs`."""
    app = unrecorded.with_backend(backend)
    app.invoke({}, thread_id="u1")
    report = replay(app, "u1", 2)
    assert report.verdict == "not_reproducible" and report.tasks[0].recorded_inputs == 0
    assert report.reason.startswith("not reproducible: the node recorded no external inputs")


def test_replay_of_a_human_decision_is_not_applicable(chat: CompiledGraph) -> None:
    report = replay(chat, THREAD, 7)
    assert report.verdict == "not_applicable" and "human:alice@example.com" in report.reason


def test_replay_of_a_fan_out_superstep_reruns_every_task(backend: Backend) -> None:
    """Given a step where `Send` ran `summarise` once per document beside `lint`, when it is
    replayed, then every task is re-run from the state of the step before and the merged update
    and the routing to `join` are reproduced."""
    from tests import graphs

    app = graphs.docs_graph.with_backend(backend)
    app.invoke({"documents": ["a", "b", "c"]}, thread_id="fan")
    fan_step = next(h.step for h in app.get_state_history("fan") if "summarise" in h.nodes)
    report = replay(app, "fan", fan_step)
    assert report.verdict == "reproduced", report.reason
    assert sorted(t.node for t in report.tasks) == ["lint", "summarise", "summarise", "summarise"]
