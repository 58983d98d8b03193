"""`durable-graph serve` as a real process: the seed exercise over HTTP on the embedded store."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.api.conftest import Served, serve, stop


def test_seed_exercise_over_http(served: Served) -> None:
    """Given `durable-graph serve` on a free port of 127.0.0.1
    When a signed webhook starts the email graph, the approval link is read from the outbox
    notification, the page is opened, and Approve is posted
    Then the thread suspends with a link, the page shows the draft, send_email runs exactly once
    (one file in outbox/sent) and the thread completes; the serve log carries the link."""
    started = served.start()
    assert started.status_code == 201, started.text
    thread_id = started.json()["thread"]["thread_id"]

    link = served.wait_for_link(thread_id)
    assert link.startswith(f"{served.url}/approvals/")
    suspended = served.wait_for_status(thread_id, "suspended")
    assert suspended["interrupt"]["node"] == "human_review"
    assert served.sent() == []

    page = requests.get(link, headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    assert "wire USD 250,000" in page.text and "Approve" in page.text
    assert page.headers["Cache-Control"] == "no-store"

    decided = requests.post(link, json={"decision": "approve", "comment": "ok"}, timeout=10)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"]["decision"] == "approve"

    done = served.wait_for_status(thread_id, "completed")
    assert done["values"]["outcome"] == "sent" and done["values"]["approved"] is True
    assert len(served.sent(expect=1)) == 1

    again = requests.post(link, json={"decision": "approve", "comment": "ok"}, timeout=10)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert len(served.sent(expect=1)) == 1
    assert any(link in line and "notification:" in line for line in served.log)
    assert stop(served) == 0


def test_public_url_option_sets_the_link_base(tmp_path: Path) -> None:
    """Given `serve --public-url https://approve.example.org`
    When a thread suspends
    Then its link starts with that URL (not with the address serve listens on)."""
    running = serve(tmp_path, "--public-url", "https://approve.example.org/")
    try:
        thread_id = running.start().json()["thread"]["thread_id"]
        link = running.wait_for_link(thread_id)
        assert link.startswith("https://approve.example.org/approvals/")
    finally:
        assert stop(running) == 0
