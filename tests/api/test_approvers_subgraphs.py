"""A rule on a node inside a subgraph, over HTTP: a real `durable-graph serve` process on
127.0.0.1 over a real SQLite home. The parent waits at its subgraph node (which has no rule of
its own); its approval link and `POST /threads/{id}/resume` are checked and tallied under the
inner node's two-person rule, and both threads' resume steps chain both approvers
(`tests/conformance/test_signoff_subgraphs.py` covers Python and the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from durable_graph.api.explorer_auth import SESSION_COOKIE
from durable_graph.backends.local import local_backend
from durable_graph.subgraphs import subgraph_thread_id
from tests.api.conftest import Served, serving, store_snapshot
from tests.api.test_approvers import REQUEST, decide, session_token

GRAPH = "tests.conformance.test_signoff_subgraphs:outer"
BOTH = ["api:api-key", "human:explorer session"]


@pytest.fixture
def outer(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path, "--graph", GRAPH) as running:
        yield running


def inner_thread(served: Served, thread_id: str) -> str:
    """The subgraph thread the parent waits on (read from the store the server writes)."""
    backend = local_backend(served.home)
    try:
        head = backend.checkpoints.head_checkpoint(thread_id)
        assert head is not None and head.interrupt is not None and head.interrupt.task_id
        return subgraph_thread_id(thread_id, head.interrupt.task_id)
    finally:
        backend.close()


def test_a_subgraph_rule_governs_the_parents_http_decisions(outer: Served) -> None:
    """Given a payment whose subgraph waits at a four-eyes node, served over HTTP
    When its link is used anonymously, the API key resumes the parent (the resume route), then
    uses the link, and the explorer session uses the link
    Then the anonymous decision is refused (401) and the repeat by the API key too (403), both
    writing nothing; the API key's approval is recorded (202) and the parent waits; the
    session's completes the rule, and the parent's and the subgraph's resume steps both chain
    both approvers, which `verify` names for each thread."""
    started = outer.start(REQUEST)
    assert started.status_code == 201, started.text
    thread_id = started.json()["thread"]["thread_id"]
    waiting = outer.wait_for_status(thread_id, "suspended")
    link = outer.wait_for_link(thread_id)
    inner = inner_thread(outer, thread_id)
    auth = {"x-api-key": outer.api_key}
    before = store_snapshot(outer.home)

    anonymous = decide(outer, link)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "sign_in_required"
    assert store_snapshot(outer.home) == before

    decision = {"expected_step": waiting["step"], "resume_value": True}
    first = requests.post(
        f"{outer.url}/threads/{thread_id}/resume", json=decision, headers=auth, timeout=10
    )
    assert first.status_code == 202, first.text
    shown = outer.thread(thread_id)
    assert shown["status"] == "suspended"
    assert shown["approvals"]["required"] == 2
    assert [(a["by"], a["method"]) for a in shown["approvals"]["approvals"]] == [
        ("api-key", "api_key")
    ]
    recorded = store_snapshot(outer.home)
    again = decide(outer, link, **auth)
    assert again.status_code == 403 and "already approved" in again.json()["error"]["message"]
    assert store_snapshot(outer.home) == recorded

    cookie = f"{SESSION_COOKIE}={session_token(outer)}"
    second = decide(outer, link, Cookie=cookie)
    assert second.status_code == 200, second.text
    done = outer.wait_for_status(thread_id, "completed")
    assert done["values"]["outcome"] == "released"
    for tid in (thread_id, inner):
        verified = requests.get(f"{outer.url}/threads/{quote(tid, safe='')}/verify",
                                headers=auth, timeout=10).json()  # fmt: skip
        assert verified["ok"], verified
        assert list(verified["approved"].values()) == [BOTH], tid
