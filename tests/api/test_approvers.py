"""Approval rules on the embedded shape: a real `durable-graph serve` process on 127.0.0.1 over
a real SQLite home, serving the four-eyes payment graph. Who decides a link is whoever signed in
to this server (`approvers.identify`): locally the explorer's session (the token `serve`
printed) or the API key. Anonymous decisions are refused (401), the first approver is recorded
while the thread waits (202), the same person counts once (403), a second person resumes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from durable_graph.api.explorer_auth import SESSION_COOKIE
from tests.api.conftest import Served, serving, store_snapshot

GRAPH = "examples.four_eyes:graph"
REQUEST = {"requested_by": "alice@example.com", "payee": "ACME GmbH", "amount_eur": 25_000}


@pytest.fixture
def four_eyes(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path, "--graph", GRAPH) as running:
        yield running


def session_token(served: Served) -> str:
    return served.printed(r"/explorer/login\?token=(\S+)").group(1)


def decide(served: Served, link: str, **headers: str) -> requests.Response:
    return requests.post(
        link.replace(link.split("/approvals/")[0], served.url),
        json={"decision": "approve", "comment": "checked"},
        headers=headers,
        timeout=10,
    )


def test_four_eyes_over_http_on_sqlite(four_eyes: Served) -> None:
    started = four_eyes.start(REQUEST)
    assert started.status_code == 201, started.text
    thread_id = started.json()["thread"]["thread_id"]
    four_eyes.wait_for_status(thread_id, "suspended")
    link = four_eyes.wait_for_link(thread_id)
    cookie = f"{SESSION_COOKIE}={session_token(four_eyes)}"
    before = store_snapshot(four_eyes.home)

    anonymous = decide(four_eyes, link)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "sign_in_required"
    assert store_snapshot(four_eyes.home) == before

    first = decide(four_eyes, link, **{"x-api-key": four_eyes.api_key})
    assert first.status_code == 202, first.text
    body: dict[str, Any] = first.json()
    assert body["approvals"]["required"] == 2
    assert [a["by"] for a in body["approvals"]["approvals"]] == ["api-key"]
    shown = four_eyes.thread(thread_id)
    assert shown["status"] == "suspended" and len(shown["approvals"]["approvals"]) == 1
    page = requests.get(
        link.replace(link.split("/approvals/")[0], four_eyes.url),
        headers={"Accept": "text/html"},
        timeout=10,
    )
    assert "Approved so far by api-key (1 of 2)" in page.text
    recorded = store_snapshot(four_eyes.home)
    again = decide(four_eyes, link, **{"x-api-key": four_eyes.api_key})
    assert again.status_code == 403 and "already approved" in again.json()["error"]["message"]
    assert store_snapshot(four_eyes.home) == recorded

    second = decide(four_eyes, link, Cookie=cookie)
    assert second.status_code == 200, second.text
    assert second.json()["decision"]["decided_by"] == "explorer session"
    done = four_eyes.wait_for_status(thread_id, "completed")
    assert done["values"]["outcome"] == "released"
    history = requests.get(
        f"{four_eyes.url}/threads/{thread_id}/history",
        headers={"x-api-key": four_eyes.api_key},
        timeout=10,
    ).json()
    resume = next(i for i in history["items"] if i["source"] == "update")
    assert resume["actor"] == {"kind": "human", "id": "explorer session"}

    # Both approvers are hashed with the resume step: the step view, verify and the explorer.
    auth = {"x-api-key": four_eyes.api_key}
    step = requests.get(f"{four_eyes.url}/threads/{thread_id}/steps/{resume['step']}",
                        headers=auth, timeout=10).json()  # fmt: skip
    assert step["approvals"]["chained"] is True
    assert [(a["by"], a["method"]) for a in step["approvals"]["approvals"]] == [
        ("api-key", "api_key"),
        ("explorer session", "session"),
    ]
    verified = requests.get(f"{four_eyes.url}/threads/{thread_id}/verify", headers=auth,
                            timeout=10).json()  # fmt: skip
    assert verified["ok"] and verified["approved"] == {
        str(resume["step"]): ["api:api-key", "human:explorer session"]
    }
    page = requests.get(
        f"{four_eyes.url}/explorer/threads/{thread_id}?step={resume['step']}",
        headers={"Cookie": cookie},
        timeout=10,
    )
    assert page.status_code == 200, page.text
    assert "Approvals (2 of 2 required; hashed with this step)" in page.text
    assert "<code>api:api-key</code> (api_key, via link " in page.text
