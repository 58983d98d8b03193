"""The engine's guarantees, on every backend: the seed flow, fan-out/fan-in, retries,
interrupts, exactly-once effects under duplicate delivery, optimistic concurrency, bad input."""

from __future__ import annotations

import pytest

from durable_graph import (
    CompiledGraph,
    GraphMismatch,
    InvalidInput,
    NotSuspended,
    StaleHead,
    ThreadFailed,
)
from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.errors import ThreadNotFound, UnknownNode
from durable_graph.ledger import verify_chain
from examples.email_approval import graph as email_graph
from tests import graphs
from tests.conformance.mailboxes import delivered


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    graphs.CALLS.clear()


def on(app: CompiledGraph, backend: Backend, clock: ManualClock) -> CompiledGraph:
    return app.with_backend(backend, clock=clock)


def snapshot_store(backend: Backend, thread_id: str) -> list[str]:
    return [c.hash for c in backend.checkpoints.list_checkpoints(thread_id)]


def test_seed_flow_suspends_then_sends_once(backend: Backend, clock: ManualClock) -> None:
    """Given the email graph, when started, then it suspends before human_review with the
    draft committed; when approved as human_review, then send_email runs once and the chain
    verifies."""
    app = on(email_graph, backend, clock)
    values = app.invoke({"user_prompt": "pay the supplier"}, thread_id="tx-1")
    state = app.get_state("tx-1")
    assert state.status == "suspended" and state.next == ("human_review",)
    assert values["risk"] == "high" and "wire" in values["draft"]
    assert backend.queue.depth() == 0  # a suspended thread holds no queue message

    app.resume("tx-1", values={"approved": True}, as_node="human_review")
    final = app.get_state("tx-1")
    assert final.status == "completed"
    assert final.values["outcome"] == "sent"
    [email] = delivered(backend)
    assert email.to == ("cfo@example.com",) and email.body == final.values["draft"]
    assert email.subject == final.values["subject"]
    records = backend.checkpoints.list_checkpoints("tx-1", newest_first=False)
    assert [r.source for r in records] == ["input", "node", "update", "node"]
    assert verify_chain("tx-1", records, backend.payloads).ok


def test_rejection_sends_nothing(backend: Backend, clock: ManualClock) -> None:
    app = on(email_graph, backend, clock)
    app.invoke({"user_prompt": "pay"}, thread_id="tx-2")
    app.resume("tx-2", values={"approved": False}, as_node="human_review")
    final = app.get_state("tx-2")
    assert final.status == "completed" and final.values["outcome"] == "rejected"
    assert delivered(backend) == []


def test_racing_resumes_one_wins(backend: Backend, clock: ManualClock) -> None:
    """Given a suspended thread seen at step 1 by two approvers, when both resume from step 1,
    then the second gets StaleHead and send_email ran once."""
    app = on(email_graph, backend, clock)
    app.invoke({"user_prompt": "pay"}, thread_id="tx-3")
    seen = app.get_state("tx-3").step
    app.resume("tx-3", values={"approved": True}, as_node="human_review", expected_step=seen)
    with pytest.raises((StaleHead, NotSuspended)):
        app.resume("tx-3", values={"approved": False}, as_node="human_review", expected_step=seen)
    assert app.get_state("tx-3").values["outcome"] == "sent"
    assert len(delivered(backend)) == 1


def test_bad_input_changes_nothing(backend: Backend, clock: ManualClock) -> None:
    """Given a suspended thread, then each bad request gets a specific error and the stored
    chain is byte-for-byte what it was."""
    app = on(email_graph, backend, clock)
    app.invoke({"user_prompt": "pay"}, thread_id="tx-4")
    before = snapshot_store(backend, "tx-4")
    with pytest.raises(UnknownNode, match="human_reveiw"):
        app.resume("tx-4", values={"approved": True}, as_node="human_reveiw")
    with pytest.raises(InvalidInput, match="approved"):
        app.resume("tx-4", values={"approved": "perhaps"}, as_node="human_review")
    with pytest.raises(InvalidInput, match="not a field"):
        app.resume("tx-4", values={"aproved": True}, as_node="human_review")
    with pytest.raises(ThreadNotFound):
        app.resume("nope", values={"approved": True}, as_node="human_review")
    assert snapshot_store(backend, "tx-4") == before
    app.resume("tx-4", values={"approved": True}, as_node="human_review")
    done = snapshot_store(backend, "tx-4")
    with pytest.raises(NotSuspended, match="completed"):
        app.resume("tx-4", values={"approved": False}, as_node="human_review")
    assert snapshot_store(backend, "tx-4") == done


def test_invalid_start_input_stores_nothing(backend: Backend, clock: ManualClock) -> None:
    app = on(email_graph, backend, clock)
    with pytest.raises(InvalidInput, match="user_prompt"):
        app.invoke({"user_prompt": ["not", "a", "string"]}, thread_id="tx-5")
    assert backend.checkpoints.head_checkpoint("tx-5") is None


def test_fan_out_and_fan_in_merge_in_one_superstep(backend: Backend, clock: ManualClock) -> None:
    """Given three documents, then summarise runs once per document (Send) in parallel with
    lint, their writes merge through reducers, and join runs once after all of them."""
    app = on(graphs.docs_graph, backend, clock)
    values = app.invoke({"documents": ["a", "b", "flaky"]}, thread_id="docs-1")
    assert sorted(values["summaries"]) == ["summary of a", "summary of b", "summary of flaky"]
    assert values["report"] == "summary of a | summary of b | summary of flaky"
    assert graphs.CALLS["join"] == 1
    history = app.get_state_history("docs-1")
    fan_step = next(h for h in history if "summarise" in h.nodes)
    assert sorted(fan_step.nodes) == ["lint", "summarise"]  # each node once, however many tasks


def test_failed_task_does_not_rerun_successful_siblings(
    backend: Backend, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a fan-out where one task fails after its retries, then the thread is failed with
    the error recorded; when resumed after the fault is fixed, then only the failed task runs
    again and the result merges as one superstep."""
    app = on(graphs.docs_graph, backend, clock)
    with pytest.raises(ThreadFailed, match="'summarise'"):
        app.invoke({"documents": ["a", "broken"]}, thread_id="docs-2")
    failed = app.get_state("docs-2")
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.node == "summarise"
    assert "broken" in failed.error.message and failed.error.attempts == 2
    assert graphs.CALLS["summarise:a"] == 1 and graphs.CALLS["lint"] == 1

    monkeypatch.setenv("DG_TEST_FIX_BROKEN", "1")
    app.resume("docs-2")
    done = app.get_state("docs-2")
    assert done.status == "completed", [
        (h.step, h.status, h.error) for h in app.get_state_history("docs-2")
    ]
    assert graphs.CALLS["summarise:a"] == 1 and graphs.CALLS["lint"] == 1
    assert graphs.CALLS["summarise:broken"] == 3
    assert done.values["report"] == "summary of a | summary of broken"


def test_retry_policy_then_failure_then_resume(backend: Backend, clock: ManualClock) -> None:
    """Given a node that fails twice, with two attempts allowed, then the thread fails; a
    resume retries and succeeds."""
    app = on(graphs.flaky_graph, backend, clock)
    with pytest.raises(ThreadFailed, match="TimeoutError"):
        app.invoke({}, thread_id="flaky-1")
    state = app.get_state("flaky-1")
    assert state.status == "failed" and state.error is not None
    assert state.error.type == "TimeoutError" and state.error.attempts == 2
    app.resume("flaky-1")
    assert app.get_state("flaky-1").values["done"] is True


def test_a_failed_thread_raises_thread_failed_and_stays_resumable(
    backend: Backend, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a node that always raises, when invoked, then ThreadFailed names the thread, the
    step, the node, the error and the attempts, and the thread is failed (not lost); invoking it
    again raises again without running anything; when the node is fixed and the thread resumed,
    then it completes."""
    app = on(graphs.classify_graph, backend, clock)
    with pytest.raises(ThreadFailed) as raised:
        app.invoke({"text": "invoice 42"}, thread_id="cls-1")
    failure = raised.value
    assert failure.thread_id == "cls-1" and failure.error is not None
    assert (failure.error.node, failure.error.type, failure.error.message) == (
        "classify",
        "ValueError",
        "boom",
    )
    assert failure.error.attempts == 3 and graphs.CALLS["classify"] == 3
    state = app.get_state("cls-1")
    assert state.status == "failed" and failure.step == state.step
    assert str(failure) == (
        f"thread 'cls-1' failed at step {state.step} in node 'classify': ValueError: boom "
        "(3 attempts); the thread stays failed and can be resumed"
    )

    with pytest.raises(ThreadFailed):
        app.invoke(None, thread_id="cls-1")
    assert graphs.CALLS["classify"] == 3 and app.get_state("cls-1").step == state.step

    monkeypatch.setenv("DG_TEST_FIX_CLASSIFY", "1")
    app.resume("cls-1")
    done = app.get_state("cls-1")
    assert done.status == "completed" and done.values["label"] == "invoice"
    records = backend.checkpoints.list_checkpoints("cls-1", newest_first=False)
    assert verify_chain("cls-1", records, backend.payloads).ok


def test_a_retry_that_fails_again_raises_thread_failed(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a failed thread whose fault is not fixed, when resumed, or updated and invoked,
    then the retry fails again and raises ThreadFailed at the new head; the thread stays
    failed."""
    app = on(graphs.classify_graph, backend, clock)
    with pytest.raises(ThreadFailed) as first:
        app.invoke({"text": "memo"}, thread_id="cls-2")
    with pytest.raises(ThreadFailed, match="boom") as again:
        app.resume("cls-2")
    assert again.value.step > first.value.step
    assert app.get_state("cls-2").status == "failed" and graphs.CALLS["classify"] == 6

    updated = app.get_state(app.update_state("cls-2", {"text": "invoice"}))
    assert updated.status == "running"  # update_state writes, it does not run
    with pytest.raises(ThreadFailed) as third:
        app.invoke(None, thread_id="cls-2")
    assert third.value.step > updated.step and graphs.CALLS["classify"] == 9
    assert app.get_state("cls-2").status == "failed"


def test_dynamic_interrupt_returns_resume_value(backend: Backend, clock: ManualClock) -> None:
    """Given a node calling interrupt(), then the thread suspends with the payload; on resume
    the node re-runs and interrupt() returns the resume value, which routing then uses."""
    app = on(graphs.review_graph, backend, clock)
    app.invoke({"amount": 500}, thread_id="rev-1")
    state = app.get_state("rev-1")
    assert state.status == "suspended"
    assert state.interrupt is not None and state.interrupt.when == "during"
    assert state.interrupt.payload == {"question": "approve 500?"}
    app.resume("rev-1", resume_value="yes")
    final = app.get_state("rev-1")
    assert final.values == {"amount": 500, "decision": "yes", "route_taken": "big"}
    route = [r for h in app.get_state_history("rev-1") for r in h.checkpoint.route]
    assert any(r.kind == "conditional" and r.result == ["big"] for r in route)


def test_node_output_that_is_not_json_fails_clearly(backend: Backend, clock: ManualClock) -> None:
    app = on(graphs.bad_graph, backend, clock)
    with pytest.raises(ThreadFailed, match="not JSON-serialisable"):
        app.invoke({}, thread_id="bad-1")
    state = app.get_state("bad-1")
    assert state.status == "failed" and state.error is not None
    assert "not JSON-serialisable" in state.error.message
    assert state.values == {"out": ""}


def test_duplicate_delivery_commits_once_with_one_side_effect(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the send_email transition delivered twice (a redelivery after the commit), then
    one step is committed and the email is delivered once."""
    app = on(email_graph, backend, clock)
    app.invoke({"user_prompt": "pay"}, thread_id="dup-1")
    app.resume("dup-1", values={"approved": True}, as_node="human_review", run=False)
    [delivery] = backend.queue.receive(max_messages=1, visibility_timeout=30)
    engine = app.engine()
    first = engine.execute(delivery.message, receive_count=1)
    second = engine.execute(delivery.message, receive_count=2)
    assert (first.kind, second.kind) == ("committed", "duplicate")
    assert len(delivered(backend)) == 1
    steps = [c.step for c in backend.checkpoints.list_checkpoints("dup-1", newest_first=False)]
    assert steps == [0, 1, 2, 3]


def test_graph_version_mismatch_is_refused(backend: Backend, clock: ManualClock) -> None:
    from durable_graph import END, START, StateGraph
    from examples.email_approval import EmailState, draft_email

    app = on(email_graph, backend, clock)
    app.invoke({"user_prompt": "pay"}, thread_id="ver-1")
    changed = StateGraph(EmailState)
    changed.add_node("draft_email", draft_email)
    changed.add_node("human_review", lambda s: None)
    changed.add_edge(START, "draft_email").add_edge("draft_email", "human_review")
    changed.add_edge("human_review", END)
    other = changed.compile(name=email_graph.name).with_backend(backend, clock=clock)
    assert other.version != app.version
    with pytest.raises(GraphMismatch, match="version"):
        other.resume("ver-1", values={"approved": True}, as_node="human_review")


def test_large_values_are_offloaded_once(backend: Backend, clock: ManualClock) -> None:
    """Given a draft larger than the offload threshold, then the step that set it keeps a ref
    to a chunk in the payload store (addressed by the change's digest), no later step writes
    it again, and the state reads back whole at every step."""
    backend.offload_threshold = 1024
    app = on(email_graph, backend, clock)
    prompt = "p" * 5000
    app.invoke({"user_prompt": prompt}, thread_id="big-1")
    app.resume("big-1", values={"approved": False}, as_node="human_review")
    records = backend.checkpoints.list_checkpoints("big-1", newest_first=False)
    first = records[0].changes["user_prompt"]
    assert first.ref is not None and first.ref.sha256 == first.d and first.v is None
    assert all("user_prompt" not in r.changes for r in records[1:])
    assert all(r.values["user_prompt"] == prompt for r in records)
    assert app.get_state("big-1").values["user_prompt"] == prompt
    assert verify_chain("big-1", records, backend.payloads).ok


def test_interrupt_after_then_edit_as_that_node(backend: Backend, clock: ManualClock) -> None:
    """Given interrupt_after=["write"], then the thread suspends after `write` with `publish`
    next; when a human edits the draft as `write`, then it does not suspend again and
    `publish` sees the edit."""
    app = on(graphs.after_graph, backend, clock)
    app.invoke({}, thread_id="after-1")
    state = app.get_state("after-1")
    assert state.status == "suspended" and state.next == ("publish",)
    assert state.interrupt is not None and state.interrupt.when == "after"
    app.resume("after-1", values={"draft": "edited draft", "edited": True}, as_node="write")
    final = app.get_state("after-1")
    assert final.status == "completed" and final.values["published"] == "edited draft"


def test_two_nodes_sending_to_one_node_run_every_send(backend: Backend, clock: ManualClock) -> None:
    """Given two nodes of one superstep that each Send to the same node, then every Send runs
    once (their task ids name the sender, so they cannot collide and be merged away)."""
    values = on(graphs.senders_graph, backend, clock).invoke({}, thread_id="senders-1")
    assert sorted(values["out"]) == ["a2", "from-a", "from-b"]


def test_a_success_held_by_a_failed_sibling_is_reused_even_when_it_runs_alone(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two parallel tasks where `fragile` fails, when a person fixes the state as
    `fragile` (so `steady` is the one task left), then `steady` is not run again: its recorded
    result from the failed attempt is merged."""
    app = on(graphs.pair_graph, backend, clock)
    graphs.CALLS.pop("steady", None)
    with pytest.raises(ThreadFailed, match="fragile is broken"):
        app.invoke({}, thread_id="pair-1")
    app.resume("pair-1", values={"fixed": True, "done": ["fragile (by hand)"]}, as_node="fragile")
    final = app.get_state("pair-1")
    assert final.status == "completed"
    assert sorted(final.values["done"]) == ["fragile (by hand)", "steady"]
    assert graphs.CALLS["steady"] == 1
