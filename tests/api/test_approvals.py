"""Approval links end to end on the embedded store: the page, one decision, and every way a
link can be wrong (replayed, raced, stale, expired, tampered, unknown) — each with its status,
a JSON error, and nothing stored changed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable_graph.api import ApprovalPolicy, build_resolver, local_api
from durable_graph.api.tokens import mint, token_hash
from tests.api.conftest import PUBLIC_URL, REPO, Client, LocalApi, Reply

JSON = {"Content-Type": "application/json"}


def decide(local: LocalApi, path: str, decision: str = "approve", comment: str = "") -> Reply:
    body = json.dumps({"decision": decision, "comment": comment})
    return local.client.request("POST", path, headers=JSON, body=body)


def test_page_shows_the_draft_and_changes_nothing(local: LocalApi) -> None:
    """Given a thread suspended before human_review, and the link from its notification
    When the link is opened (GET), twice
    Then the page shows the draft, node, thread, expiry and both buttons, carries the security
    headers, loads nothing from elsewhere, and nothing stored changes."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    before = local.snapshot()
    for _ in range(2):
        page = local.client.request("GET", path, headers={"Accept": "text/html"})
        assert page.status == 200
    assert local.snapshot() == before
    html = page.text
    assert "wire USD 250,000" in html and "human_review" in html and thread_id in html
    assert 'value="approve"' in html and 'value="reject"' in html and "<textarea" in html
    assert "Link expires" in html
    assert "http" not in html.lower().replace("http-equiv", "")  # no third-party resource
    assert "<script" not in html.lower()
    headers = page.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]


def test_approve_resumes_once_and_a_replay_returns_the_recorded_outcome(local: LocalApi) -> None:
    """Given a suspended thread and its link
    When the link approves, the worker runs, and the same link is posted again
    Then the first post resumes as human_review (actor = the link), send_email runs once, and
    the replay returns the recorded decision with replayed=true, changing nothing."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    first = decide(local, path, "approve", "fine by me")
    assert first.status == 200, first.body
    decision = first.json()["decision"]
    assert decision["decision"] == "approve" and decision["applied_step"] == 2
    assert local.settle(thread_id) == "completed"
    assert len(local.sent_files()) == 1
    state = local.api.graph("examples.email_approval:graph").get_state(thread_id)
    assert state.values["approved"] is True and state.values["reviewer_comment"] == "fine by me"
    step2 = local.backend.checkpoints.get_checkpoint(thread_id, 2)
    assert step2 is not None and step2.actor.kind == "human" and step2.nodes == ["human_review"]

    before = local.snapshot()
    again = decide(local, path, "approve", "fine by me")
    assert again.status == 200
    assert again.json()["replayed"] is True
    assert again.json()["decision"] == decision and again.json()["thread_status"] == "completed"
    other = decide(local, path, "reject")
    assert other.status == 409
    assert other.error["code"] == "already_decided"
    assert other.error["decision"]["decision"] == "approve"
    assert local.snapshot() == before
    assert len(local.sent_files()) == 1


def test_reject_records_the_decision_and_sends_nothing(local: LocalApi) -> None:
    """Given a suspended thread
    When its link rejects
    Then the thread completes with outcome rejected and no email is sent."""
    thread_id = local.suspended_thread()
    assert decide(local, local.path_of(local.link(thread_id)), "reject").status == 200
    assert local.settle(thread_id) == "completed"
    graph = local.api.graph("examples.email_approval:graph")
    assert graph.get_state(thread_id).values["outcome"] == "rejected"
    assert local.sent_files() == []


def test_browser_form_post_gets_a_page(local: LocalApi) -> None:
    """Given the page's form (form-encoded, Accept: text/html)
    When Approve is submitted
    Then the answer is an HTML page saying it was approved, with the security headers."""
    thread_id = local.suspended_thread()
    reply = local.client.request(
        "POST",
        local.path_of(local.link(thread_id)),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        body="decision=approve&comment=looks+right",
    )
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    assert "Approved" in reply.text and reply.headers["cache-control"] == "no-store"


def tamperings(token: str) -> list[str]:
    claims, signature = token.split(".")
    flip = "A" if signature[5] != "A" else "B"
    return [
        f"{claims}.{signature[:5]}{flip}{signature[6:]}",  # signature changed
        f"{claims[:-2]}{'A' if claims[-2] != 'A' else 'B'}{claims[-1]}.{signature}",  # claims
        f"{claims}.",  # signature removed
        claims,  # no separator
        f"{claims}.{signature}.x",  # extra part
        f"{claims}.{signature}"[:-3],  # truncated
        "not-a-token",
        "a" * 3000,  # oversized
        f"{claims}.{signature}%00",
    ]


def test_tampered_and_unknown_tokens_get_one_generic_404(local: LocalApi) -> None:
    """Given a real link
    When any part of its token is altered, or a token signed with the real key was never
    issued, or the token names another thread
    Then GET and POST both answer the same 404 body, whatever failed, and nothing changes."""
    thread_id = local.suspended_thread()
    token = local.link(thread_id).rsplit("/", 1)[1]
    never_issued, _ = mint(
        local.api.config.keys,
        thread_id=thread_id,
        step=1,
        node="human_review",
        decisions=("approve", "reject"),
        expires_at=int(local.clock.now().timestamp()) + 3600,
        subject="approver",
    )
    other_thread, _ = mint(
        local.api.config.keys,
        thread_id="unknown-thread",
        step=1,
        node="human_review",
        decisions=("approve",),
        expires_at=int(local.clock.now().timestamp()) + 3600,
        subject="approver",
    )
    bodies = set()
    before = local.snapshot()
    for bad in [*tamperings(token), never_issued, other_thread]:
        for method in ("GET", "POST"):
            reply = (
                local.client.request("GET", f"/approvals/{bad}")
                if method == "GET"
                else decide(local, f"/approvals/{bad}")
            )
            assert reply.status == 404, (bad, method, reply.body)
            bodies.add(reply.body)
    assert bodies == {
        b'{"error": {"code": "link_not_found", "message": "this approval link is not valid"}}'
    }
    assert local.snapshot() == before


def test_expired_link_is_gone_and_changes_nothing(local: LocalApi) -> None:
    """Given a link whose expiry (3 days) has passed
    When it is opened or posted
    Then 410 link_expired, and the thread stays suspended."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    local.clock.advance(3 * 24 * 3600 + 1)
    before = local.snapshot()
    reply = decide(local, path)
    assert reply.status == 410 and reply.error["code"] == "link_expired"
    assert local.client.request("GET", path).status == 410
    page = local.client.request("GET", path, headers={"Accept": "text/html"})
    assert page.status == 410 and "expired" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert local.snapshot() == before


def test_stale_link_is_gone_once_the_thread_moved_on(local: LocalApi) -> None:
    """Given a link for step 1, and the thread decided through the API instead
    When the link is posted
    Then 410 link_stale and nothing changes."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    body = json.dumps(
        {"values": {"approved": False}, "as_node": "human_review", "expected_step": 1}
    )
    assert (
        local.client.request(
            "POST", f"/threads/{thread_id}/resume", headers=local.authed(), body=body
        ).status
        == 200
    )
    local.settle(thread_id)
    before = local.snapshot()
    reply = decide(local, path)
    assert reply.status == 410 and reply.error["code"] == "link_stale"
    assert local.client.request("GET", path).status == 410
    assert local.snapshot() == before


@pytest.mark.parametrize(
    ("body", "content_type", "code", "field"),
    [
        ('{"decision": "maybe"}', "application/json", "invalid_input", "decision"),
        ('{"decision": "approve", "x": 1}', "application/json", "invalid_input", "x"),
        ('{"decision": ', "application/json", "malformed_body", "body"),
        ("", "application/json", "malformed_body", "body"),
        ("comment=only", "application/x-www-form-urlencoded", "invalid_input", "decision"),
        ("decision=approve&&&=", "application/x-www-form-urlencoded", "malformed_body", "body"),
        (
            '{"decision": "approve", "comment": "' + "x" * 2001 + '"}',
            "application/json",
            "invalid_input",
            "comment",
        ),
    ],
)
def test_malformed_decisions_are_refused(
    local: LocalApi, body: str, content_type: str, code: str, field: str
) -> None:
    """Given a valid link
    When the decision is not allowed or the body is malformed
    Then 400 naming the field, nothing changes, and the link still works afterwards."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    before = local.snapshot()
    reply = local.client.request("POST", path, headers={"Content-Type": content_type}, body=body)
    assert reply.status == 400, reply.body
    assert reply.error["code"] == code and reply.error.get("field") == field
    assert local.snapshot() == before
    assert decide(local, path).status == 200


def test_only_a_hash_of_the_token_is_stored(local: LocalApi) -> None:
    """Given an issued link
    When the whole store is searched for the token
    Then only its SHA-256 appears (in the record key), never the token or its signature."""
    thread_id = local.suspended_thread()
    token = local.link(thread_id).rsplit("/", 1)[1]
    local.backend.close()
    # The store is the database and the payloads; the outbox (its table, and the file copy) is
    # the delivery channel itself: drop its rows and rebuild the file before searching.
    with contextlib.closing(sqlite3.connect(local.home / "state.db")) as db:
        db.execute("DELETE FROM outbox")
        db.commit()
        db.execute("VACUUM")
    files = [*local.home.glob("state.db*"), *(local.home / "payloads").rglob("*")]
    stored = b"".join(p.read_bytes() for p in files if p.is_file())
    assert b"approval#" in stored
    assert token.encode() not in stored and token.split(".")[1].encode() not in stored
    record = local_record(local, thread_id, token)
    assert record["state"] == "issued" and record["step"] == 1


def local_record(local: LocalApi, thread_id: str, token: str) -> dict[str, object]:
    import sqlite3

    with sqlite3.connect(local.home / "state.db") as conn:
        row = conn.execute(
            "SELECT body FROM records WHERE thread_id = ? AND key = ?",
            (thread_id, f"approval#{token_hash(token)}"),
        ).fetchone()
    assert row is not None
    value: dict[str, object] = json.loads(row[0])
    return value


def test_a_decision_interrupted_before_the_resume_is_finished_by_a_replay(local: LocalApi) -> None:
    """Given a link whose decision was recorded but whose resume never happened (the process
    died between the two writes)
    When the same decision is posted again
    Then the thread is resumed exactly once and the reply says it was a replay."""
    thread_id = local.suspended_thread()
    token = local.link(thread_id).rsplit("/", 1)[1]
    key = f"approval#{token_hash(token)}"
    store = local.backend.checkpoints
    record = store.get_record(thread_id, key)
    assert record is not None
    crashed = {
        **record.value,
        "state": "accepted",
        "decision": "approve",
        "comment": "",
        "decided_by": f"approver via link {token_hash(token)[:12]}",
        "decided_at": "x",
    }
    store.put_record(thread_id, key, crashed, expected_version=record.version)
    reply = decide(local, f"/approvals/{token}")
    assert reply.status == 200 and reply.json()["replayed"] is True
    assert reply.json()["decision"]["applied_step"] == 2
    assert local.settle(thread_id) == "completed"
    assert len(local.sent_files()) == 1
    assert [c.step for c in store.list_checkpoints(thread_id)] == [3, 2, 1, 0]


def test_racing_approvers_in_two_processes_one_wins(local: LocalApi, tmp_path: Path) -> None:
    """Given one link held by two approvers, each in their own process (two Lambdas)
    When one approves and the other rejects at the same moment
    Then exactly one gets 200 and the other 409 carrying the winner's decision, the thread is
    resumed once, and send_email runs at most once (once if approve won)."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.api.race_approver",
                str(local.home),
                PUBLIC_URL,
                path,
                d,
                str(go),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in ("approve", "reject")
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    statuses = sorted(r["status"] for r in results)
    assert statuses == [200, 409], results
    winner = next(r for r in results if r["status"] == 200)["body"]["decision"]
    loser = next(r for r in results if r["status"] == 409)["body"]["error"]
    assert loser["code"] == "already_decided"
    assert loser["decision"]["decision"] == winner["decision"]
    assert local.settle(thread_id) == "completed"
    updates = [
        c for c in local.backend.checkpoints.list_checkpoints(thread_id) if c.source == "update"
    ]
    assert len(updates) == 1
    sent = local.sent_files()
    assert len(sent) == (1 if winner["decision"] == "approve" else 0)


def test_two_links_for_one_suspension_the_thread_moves_once(local: LocalApi) -> None:
    """Given two links minted for the same suspended step (e.g. re-sent notification)
    When the first decides and then the second is posted
    Then the second is refused (410 stale) and the thread was resumed once."""
    thread_id = local.suspended_thread()
    head = local.backend.checkpoints.head_checkpoint(thread_id)
    assert head is not None
    second = local.api.approvals.issue(head)
    assert second is not None
    first = local.path_of(local.link(thread_id))
    assert decide(local, first).status == 200
    reply = decide(local, f"/approvals/{second}", "reject")
    assert reply.status == 410 and reply.error["code"] == "link_stale"
    started = time.monotonic()
    assert local.settle(thread_id) == "completed" and time.monotonic() - started < 30


def test_page_of_a_decided_link_shows_the_decision_without_buttons(local: LocalApi) -> None:
    """Given a link that approved
    When it is opened again
    Then the page says who decided what, and offers no buttons."""
    thread_id = local.suspended_thread()
    path = local.path_of(local.link(thread_id))
    assert decide(local, path, "approve", "ok").status == 200
    page = local.client.request("GET", path, headers={"Accept": "text/html"})
    assert page.status == 200
    assert "Already decided: approve" in page.text and "<form" not in page.text


def test_a_dynamic_interrupt_gets_the_decision_as_its_resume_value(local: LocalApi) -> None:
    """Given a graph whose node calls `ctx.interrupt(...)`, with its own approval policy
    When the thread suspends inside the node and the link decides "yes"
    Then the page shows the interrupt's question, and the node re-runs receiving the policy's
    value for "yes" as the return value of `interrupt()`."""
    policy = ApprovalPolicy(decisions=("yes", "no"), values_for=lambda d, c: {"answer": d})
    api = local_api(
        local.home,
        local.backend,
        public_url=PUBLIC_URL,
        graphs=("tests.graphs:review_graph",),
        clock=local.clock,
        policies={"tests.graphs:review_graph": policy},
    )
    client = Client(build_resolver(api))
    body = json.dumps({"input": {"amount": 500}}).encode()
    thread_id = client.request("POST", "/threads", headers=local.signed(body), body=body).json()[
        "thread"
    ]["thread_id"]
    graph = api.graph("tests.graphs:review_graph")
    assert graph.run_until_settled(thread_id).status == "suspended"
    path = local.path_of(local.link(thread_id))
    page = client.request("GET", path, headers={"Accept": "text/html"})
    assert "approve 500?" in page.text and 'value="yes"' in page.text
    reply = client.request("POST", path, headers=JSON, body='{"decision": "yes"}')
    assert reply.status == 200, reply.body
    assert graph.run_until_settled(thread_id).status == "completed"
    assert graph.get_state(thread_id).values["decision"] == str({"answer": "yes"})
