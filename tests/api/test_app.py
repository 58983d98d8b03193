"""The resolver in-process on a real SQLite store: every route, and every refusal with its status,
a JSON error, and nothing stored changed."""

from __future__ import annotations

import hashlib
import json

import pytest

from durable_graph.api.config import MAX_BODY_BYTES
from durable_graph.api.service import WEBHOOK_NAMESPACE
from durable_graph.verification import verify_thread
from tests.api.conftest import GRAPH, PUBLIC_URL, LocalApi, Reply


def assert_refused(reply: Reply, status: int, code: str, field: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body)
    error = reply.error
    assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error


# ------------------------------------------------------------------------------ POST /threads


def test_signed_webhook_starts_a_thread(local: LocalApi) -> None:
    """Given a body signed with the webhook secret
    When it is posted to /threads
    Then a thread starts (201) at step 0, running, with the input as its values."""
    reply = local.start(webhook_id="msg_start")
    assert reply.status == 201
    doc = reply.json()
    assert doc["replayed"] is False and doc["webhook_id"] == "msg_start"
    assert doc["thread"]["status"] == "running" and doc["thread"]["step"] == 0
    assert doc["thread"]["values"]["user_prompt"] == "pay the supplier"
    assert doc["thread"]["next"] == ["draft_email"]


def test_replayed_webhook_returns_the_same_thread_and_runs_nothing(local: LocalApi) -> None:
    """Given a webhook delivery that started a thread
    When the same delivery (same id, same body) arrives again
    Then it gets the same thread with replayed=true, and nothing stored changes."""
    first = local.start(webhook_id="msg_twice")
    before = local.snapshot()
    again = local.start(webhook_id="msg_twice")
    assert again.status == 200
    assert again.json()["replayed"] is True
    assert again.json()["thread"]["thread_id"] == first.json()["thread"]["thread_id"]
    assert local.snapshot() == before


def test_webhook_id_reused_with_another_body_is_refused(local: LocalApi) -> None:
    """Given a processed webhook id
    When another body arrives under the same id
    Then 409 webhook_id_reused, and nothing changes."""
    local.start(webhook_id="msg_reuse")
    before = local.snapshot()
    reply = local.start({"user_prompt": "something else"}, webhook_id="msg_reuse")
    assert_refused(reply, 409, "webhook_id_reused", "webhook-id")
    assert local.snapshot() == before


BODY = json.dumps({"input": {"user_prompt": "x"}}).encode()


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("no headers", "webhook-signature"),
        ("wrong secret", "webhook-signature"),
        ("tampered body", "webhook-signature"),
        ("stale timestamp", "webhook-timestamp"),
        ("future timestamp", "webhook-timestamp"),
        ("garbage signature", "webhook-signature"),
        ("non-numeric timestamp", "webhook-timestamp"),
        ("bad id", "webhook-id"),
    ],
)
def test_bad_webhook_authentication_is_refused(local: LocalApi, case: str, field: str) -> None:
    """Given a POST /threads whose signature headers are wrong in one way
    When it is sent
    Then 401 naming the header at fault, and nothing stored changes."""
    now = int(local.clock.now().timestamp())
    headers = local.signed(BODY)
    body = BODY
    if case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "wrong secret":
        headers = local.signed(BODY, secret="whsec_" + "QUJD" * 11)
    elif case == "tampered body":
        body = BODY.replace(b'"x"', b'"y"')
    elif case == "stale timestamp":
        headers = local.signed(BODY, timestamp=now - 301)
    elif case == "future timestamp":
        headers = local.signed(BODY, timestamp=now + 301)
    elif case == "garbage signature":
        headers["webhook-signature"] = "v1 nocomma,%%% v2,abc"
    elif case == "non-numeric timestamp":
        headers["webhook-timestamp"] = "soon"
    elif case == "bad id":
        headers["webhook-id"] = "id with spaces"
    before = local.snapshot()
    reply = local.client.request("POST", "/threads", headers=headers, body=body)
    assert_refused(reply, 401, "unauthorized", field)
    assert local.snapshot() == before


def test_timestamp_inside_the_tolerance_is_accepted(local: LocalApi) -> None:
    """Given a delivery signed 299 seconds ago (inside ±5 minutes)
    When it is posted
    Then the thread starts."""
    headers = local.signed(BODY, timestamp=int(local.clock.now().timestamp()) - 299)
    assert local.client.request("POST", "/threads", headers=headers, body=BODY).status == 201


def test_signature_is_checked_before_the_body_is_parsed(local: LocalApi) -> None:
    """Given a malformed JSON body
    When it is sent unsigned, then signed
    Then unsigned gets 401 (the body was never parsed), signed gets 400 malformed_body."""
    garbage = b'{"input": '
    unsigned = local.client.request("POST", "/threads", body=garbage)
    assert_refused(unsigned, 401, "unauthorized")
    signed = local.client.request("POST", "/threads", headers=local.signed(garbage), body=garbage)
    assert_refused(signed, 400, "malformed_body", "body")


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"input": {"user_prompt": 5}}, "invalid_input", "user_prompt"),
        ({"input": {"no_such_field": 1}}, "invalid_input", "no_such_field"),
        ({"input": {}, "extra": 1}, "invalid_input", "extra"),
        ({"input": []}, "invalid_input", "input"),
        ({"graph": "os:system"}, "invalid_input", "graph"),
        ({"thread_id": "a/b"}, "invalid_input", "thread_id"),
        ({"thread_id": "__webhooks__"}, "invalid_input", "thread_id"),
        ([1, 2], "invalid_input", "body"),
    ],
)
def test_invalid_start_bodies_are_refused(
    local: LocalApi, payload: object, code: str, field: str
) -> None:
    """Given a correctly signed body whose content is invalid
    When it is posted
    Then 400 naming the field, and nothing stored changes."""
    body = json.dumps(payload).encode()
    before = local.snapshot()
    reply = local.client.request("POST", "/threads", headers=local.signed(body), body=body)
    assert_refused(reply, 400, code, field)
    assert local.snapshot() == before


def test_new_input_for_a_running_thread_is_refused(local: LocalApi) -> None:
    """Given a thread `t-1` whose tasks are in flight
    When a new delivery gives `t-1` input
    Then 409 turn_refused saying it is running, and nothing changes."""
    assert local.start(thread_id="t-1").status == 201
    before = local.snapshot()
    reply = local.start(thread_id="t-1")
    assert_refused(reply, 409, "turn_refused")
    assert "is running" in reply.error["message"]
    assert local.snapshot() == before


def test_new_input_for_a_suspended_thread_is_refused_saying_how_to_answer(
    local: LocalApi,
) -> None:
    """Given a thread waiting for a human decision
    When a new delivery gives it input
    Then 409 turn_refused naming the decision and the resume route; nothing changes."""
    thread_id = local.suspended_thread()
    before = local.snapshot()
    reply = local.start(thread_id=thread_id)
    assert_refused(reply, 409, "turn_refused")
    message = reply.error["message"]
    assert "waits for a decision in node 'human_review'" in message
    assert f"POST /threads/{thread_id}/resume" in message
    assert local.snapshot() == before


def completed_thread(local: LocalApi) -> str:
    thread_id = local.suspended_thread()
    body = json.dumps({"values": {"approved": True}, "as_node": "human_review", "expected_step": 1})
    reply = local.client.request(
        "POST", f"/threads/{thread_id}/resume", headers=local.authed(), body=body
    )
    assert reply.status == 200, reply.body
    assert local.settle(thread_id) == "completed"
    return thread_id


def test_new_input_for_a_completed_thread_is_its_next_turn(local: LocalApi) -> None:
    """Given a completed thread
    When a delivery gives it new input (and is delivered twice)
    Then 201: the same chain continues (step head+1, source input, from START), the repeat
    is a replay that writes nothing, and the turn runs to the next decision and verifies."""
    thread_id = completed_thread(local)
    ended = local.backend.checkpoints.head_checkpoint(thread_id)
    assert ended is not None
    reply = local.start({"user_prompt": "pay the courier"}, thread_id=thread_id, webhook_id="t2")
    assert reply.status == 201, reply.body
    doc = reply.json()["thread"]
    assert doc["step"] == ended.step + 1 and doc["status"] == "running"
    assert doc["values"]["user_prompt"] == "pay the courier" and doc["next"] == ["draft_email"]
    turn = local.backend.checkpoints.get_checkpoint(thread_id, ended.step + 1)
    assert turn is not None and turn.source == "input" and turn.actor.kind == "webhook"
    before = local.snapshot()
    again = local.start({"user_prompt": "pay the courier"}, thread_id=thread_id, webhook_id="t2")
    assert again.status == 200 and again.json()["replayed"] is True
    assert local.snapshot() == before
    assert local.settle(thread_id) == "suspended"
    assert verify_thread(local.backend, thread_id).ok


def test_a_turn_reserved_by_a_delivery_that_died_is_finished_by_its_redelivery(
    local: LocalApi,
) -> None:
    """Given a delivery that reserved its webhook id for a turn of a completed thread and
    died before committing the turn
    When the webhook is delivered again
    Then the turn is committed then (once), as step head+1."""
    thread_id = completed_thread(local)
    ended = local.backend.checkpoints.head_checkpoint(thread_id)
    assert ended is not None
    body = json.dumps({"input": {"user_prompt": "again"}, "thread_id": thread_id}).encode()
    key = f"webhook#{hashlib.sha256(b'died').hexdigest()}"
    local.backend.checkpoints.put_record(
        WEBHOOK_NAMESPACE,
        key,
        {
            "webhook_id": "died",
            "thread_id": thread_id,
            "graph": GRAPH,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "received_at": "2026-01-01T00:00:00Z",
            "after_step": ended.step,
        },
        expected_version=None,
    )
    headers = local.signed(body, webhook_id="died")
    reply = local.client.request("POST", "/threads", headers=headers, body=body)
    assert reply.status == 200 and reply.json()["replayed"] is True, reply.body
    assert reply.json()["thread"]["step"] == ended.step + 1
    before = local.snapshot()
    again = local.client.request(
        "POST", "/threads", headers=local.signed(body, webhook_id="died"), body=body
    )
    assert again.json()["thread"]["step"] == ended.step + 1
    assert local.snapshot() == before


@pytest.mark.parametrize("path", ["/threads", "/threads/t/resume", "/approvals/abc.def"])
def test_oversized_bodies_are_refused(local: LocalApi, path: str) -> None:
    """Given a body one byte over the 256 KB limit
    When it is posted to any route
    Then 413 body_too_large before anything reads it; nothing changes."""
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    before = local.snapshot()
    reply = local.client.request("POST", path, headers=local.signed(body), body=body)
    assert_refused(reply, 413, "body_too_large", "body")
    assert local.snapshot() == before


# ------------------------------------------------------------------------------ reading


def test_thread_routes_require_the_api_key(local: LocalApi) -> None:
    """Given a thread
    When it is read without the API key, or with a wrong one
    Then 401, and with the key 200."""
    thread_id = local.start().json()["thread"]["thread_id"]
    for headers in ({}, {"x-api-key": "wrong-key-wrong-key"}):
        for path in (f"/threads/{thread_id}", f"/threads/{thread_id}/history"):
            assert_refused(local.client.request("GET", path, headers=headers), 401, "unauthorized")
    assert (
        local.client.request("GET", f"/threads/{thread_id}", headers=local.authed()).status == 200
    )


def test_status_history_and_any_past_step(local: LocalApi) -> None:
    """Given a thread suspended after draft_email
    When its status, history and step 0 are read
    Then the status shows the interrupt and the draft, the history lists both steps newest
    first, and step 0 still has the original (empty) draft."""
    thread_id = local.suspended_thread()
    status = local.client.request("GET", f"/threads/{thread_id}", headers=local.authed()).json()
    assert status["status"] == "suspended" and status["step"] == 1
    assert status["interrupt"] == {"node": "human_review", "when": "before", "payload": None}
    assert "wire USD 250,000" in status["values"]["draft"]

    history = local.client.request(
        "GET", f"/threads/{thread_id}/history", headers=local.authed()
    ).json()
    assert [i["step"] for i in history["items"]] == [1, 0]
    assert history["items"][0]["prev_hash"] == history["items"][1]["hash"]
    assert history["next_before"] is None
    page = local.client.request(
        "GET", f"/threads/{thread_id}/history?limit=1", headers=local.authed()
    ).json()
    assert [i["step"] for i in page["items"]] == [1] and page["next_before"] == 1

    step0 = local.client.request(
        "GET", f"/threads/{thread_id}/steps/0", headers=local.authed()
    ).json()
    assert step0["values"]["draft"] == "" and step0["source"] == "input"


@pytest.mark.parametrize(
    ("path", "status", "code", "field"),
    [
        ("/threads/nope", 404, "thread_not_found", None),
        ("/threads/nope/history", 404, "thread_not_found", None),
        ("/threads/nope/steps/0", 404, "thread_not_found", None),
        ("/threads/{tid}/steps/7", 404, "step_not_found", None),
        ("/threads/{tid}/steps/-1", 400, "invalid_input", "step"),
        ("/threads/{tid}/history?limit=0", 400, "invalid_input", "limit"),
        ("/threads/{tid}/history?before=x", 400, "invalid_input", "before"),
        ("/no/such/route", 404, "not_found", None),
    ],
)
def test_bad_reads_are_refused(
    local: LocalApi, path: str, status: int, code: str, field: str | None
) -> None:
    """Given a thread
    When an unknown thread, step, malformed parameter or route is read
    Then the documented 4xx with a JSON error."""
    thread_id = local.start().json()["thread"]["thread_id"]
    reply = local.client.request("GET", path.format(tid=thread_id), headers=local.authed())
    assert_refused(reply, status, code, field)


# ------------------------------------------------------------------------------ resume


def test_resume_from_the_step_seen_continues_the_thread(local: LocalApi) -> None:
    """Given a suspended thread at step 1
    When it is resumed as human_review with expected_step 1
    Then the decision is committed (step 2, running) and the thread completes."""
    thread_id = local.suspended_thread()
    body = json.dumps({"values": {"approved": True}, "as_node": "human_review", "expected_step": 1})
    reply = local.client.request(
        "POST", f"/threads/{thread_id}/resume", headers=local.authed(), body=body
    )
    assert reply.status == 200, reply.body
    assert reply.json()["step"] == 2 and reply.json()["status"] == "running"
    assert local.settle(thread_id) == "completed"
    assert len(local.sent_files()) == 1


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        (
            {"values": {"approved": True}, "as_node": "human_review", "expected_step": 0},
            409,
            "stale_head",
            None,
        ),
        (
            {"values": {"approved": True}, "as_node": "nobody", "expected_step": 1},
            400,
            "unknown_node",
            None,
        ),
        (
            {"values": {"approved": "very"}, "as_node": "human_review", "expected_step": 1},
            400,
            "invalid_input",
            "approved",
        ),
        ({"values": {"approved": True}}, 400, "invalid_input", "expected_step"),
        ({"expected_step": 1, "surprise": True}, 400, "invalid_input", "surprise"),
    ],
)
def test_bad_resumes_are_refused(
    local: LocalApi, payload: dict[str, object], status: int, code: str, field: str | None
) -> None:
    """Given a thread suspended at step 1
    When a resume is stale, names an unknown node, or is invalid
    Then the documented 4xx, and nothing stored changes."""
    thread_id = local.suspended_thread()
    before = local.snapshot()
    reply = local.client.request(
        "POST", f"/threads/{thread_id}/resume", headers=local.authed(), body=json.dumps(payload)
    )
    assert_refused(reply, status, code, field)
    assert local.snapshot() == before


def test_resuming_a_running_thread_is_a_conflict(local: LocalApi) -> None:
    """Given a thread that is running (not suspended)
    When it is resumed
    Then 409 not_suspended and nothing changes."""
    thread_id = local.start().json()["thread"]["thread_id"]
    before = local.snapshot()
    body = json.dumps({"values": {}, "expected_step": 0})
    reply = local.client.request(
        "POST", f"/threads/{thread_id}/resume", headers=local.authed(), body=body
    )
    assert_refused(reply, 409, "not_suspended")
    assert local.snapshot() == before


def test_links_use_the_configured_public_url_not_the_host_header(local: LocalApi) -> None:
    """Given a request claiming `Host: evil.example`
    When the thread it starts suspends
    Then the approval link still starts with the configured public URL."""
    body = json.dumps({"input": {"user_prompt": "hi"}}).encode()
    headers = {**local.signed(body), "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    thread_id = local.client.request("POST", "/threads", headers=headers, body=body).json()[
        "thread"
    ]["thread_id"]
    local.settle(thread_id)
    assert local.link(thread_id).startswith(f"{PUBLIC_URL}/approvals/")
    assert "evil" not in json.dumps(local.notifications())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"input": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}", "recursion limit exceeded"),
        (b'{"input": {"user_prompt": "\\ud800"}}', "hex escape"),
    ],
)
def test_deep_nesting_and_invalid_unicode_are_refused_with_the_reason(
    local: LocalApi, body: bytes, reason: str
) -> None:
    """Given a signed body nested 10,000 deep, or holding a lone surrogate, then 400
    malformed_body saying why (no 500, no RecursionError), and nothing stored changes."""
    before = local.snapshot()
    reply = local.client.request("POST", "/threads", headers=local.signed(body), body=body)
    assert_refused(reply, 400, "malformed_body", "body")
    assert reason in reply.error["message"]
    assert local.snapshot() == before
