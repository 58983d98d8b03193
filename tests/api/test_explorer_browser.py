"""The ledger explorer in a real browser: `durable-graph serve` on 127.0.0.1, Debian's Chromium
driven by Playwright (as the approval page test); a refused request is checked over plain HTTP.

Screenshots go to the test's temporary folder, or to `$DURABLE_GRAPH_SCREENSHOTS` when set:
`DURABLE_GRAPH_SCREENSHOTS=docs/images pytest tests/api/test_explorer_browser.py` refreshes the
ones the README and `docs/explorer.md` show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, sync_playwright

from tests.api.conftest import REPO, Served, serve, stop
from tests.api.test_pages import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import edit_stored_row

SCREENSHOTS_ENV = "DURABLE_GRAPH_SCREENSHOTS"


def session_link(served: Served, timeout: float = 15) -> str:
    """The sign-in link `serve` printed once."""
    return served.printed(r"explorer: (http://\S+/explorer/login\?token=\S+)", timeout).group(1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str]]]:
    """A served store with one suspended, one approved (completed) and one tampered thread."""
    running = serve(tmp_path)
    try:
        ids = {}
        for name in ("waiting", "approved", "tampered"):
            ids[name] = running.start().json()["thread"]["thread_id"]
        for name in ("approved", "tampered"):
            link = running.wait_for_link(ids[name])
            running.wait_for_status(ids[name], "suspended")
            reply = requests.post(link, json={"decision": "approve", "comment": "ok"}, timeout=10)
            assert reply.status_code == 200, reply.text
            running.wait_for_status(ids[name], "completed")
        running.wait_for_status(ids["waiting"], "suspended")
        edit_stored_row(  # an attacker edits step 2
            tmp_path / "state.db",
            ids["tampered"],
            2,
            lambda row: row.update(created_at="2020-01-01T00:00:00.000000Z"),
        )
        yield running, ids
    finally:
        if running.proc.poll() is None:
            stop(running)


def _shot(page: Page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_a_reviewer_reads_a_thread_in_the_browser(
    world: tuple[Served, dict[str, str]], tmp_path: Path
) -> None:
    """Given a store served with a waiting, an approved and a tampered thread
    When a person signs in with the printed link and clicks through
    Then the list filters by status, the thread page draws the graph (Mermaid, served locally),
    a past state reads back, a diff of two steps shows what the approval changed, the tampered
    thread is marked failed at the step edited, the downloaded bundle verifies with the CLI,
    the inbox leads to the approval page, and nothing breaks the page's CSP."""
    served, ids = world
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on(
                "response",
                lambda r: problems.append(f"{r.status}: {r.url}") if r.status == 404 else None,
            )
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith(served.url) else None,
            )

            page.goto(session_link(served))
            assert page.url == f"{served.url}/explorer"
            table = page.locator("#threads")
            for tid in ids.values():
                assert tid in table.inner_text()
            _shot(page, shots, "explorer-threads.png")

            page.select_option("select[name=status]", "suspended")
            page.click("form[role=search] button")
            assert ids["waiting"] in table.inner_text()
            assert ids["approved"] not in table.inner_text()

            page.goto(f"{served.url}/explorer?status=completed")
            page.click(f"text={ids['approved']}")
            assert "Verified" in page.locator("#verdict").inner_text()
            frame = page.frame_locator("iframe.graph")
            frame.locator("svg .node").first.wait_for(timeout=15000)
            assert frame.locator("svg .node").count() == 5  # start, 3 nodes, end
            rows = page.locator("#timeline tbody tr")
            assert rows.count() == 4  # input, draft, the decision, send
            assert "signed" in page.locator("#step-3").inner_text()
            _shot(page, shots, "explorer-thread.png")

            page.click("#step-1 a")  # the draft, before anyone approved it
            state = page.locator("#state").inner_text()
            assert "State at step 1" in state and "draft" in state
            assert '"approved": null' in state

            page.fill("input[name=a]", "1")
            page.fill("input[name=b]", "3")
            page.click("#diff-form button")
            diff = page.locator("#diff").inner_text()
            assert "approved\tchanged" in diff and '"new": true' in diff
            assert "reviewer_comment" in diff and "sent_message_id" in diff
            _shot(page, shots, "explorer-diff.png")

            page.goto(f"{served.url}/explorer/threads/{ids['approved']}")
            with page.expect_download() as download:
                page.click("#bundle")
            bundle = tmp_path / "bundle.json"
            download.value.save_as(bundle)

            page.goto(f"{served.url}/explorer/threads/{ids['tampered']}")
            verdict = page.locator("#verdict").inner_text()
            assert "Verification failed at step 2" in verdict and "hash" in verdict
            _shot(page, shots, "explorer-tampered.png")

            page.click("nav >> text=Approvals inbox")
            inbox = page.locator("#inbox").inner_text()
            assert ids["waiting"] in inbox and ids["approved"] not in inbox
            _shot(page, shots, "explorer-inbox.png")
            with page.expect_navigation():
                page.click("#inbox button")
            assert page.title() == "Approval requested: human_review"

            assert problems == []  # no CSP violation, nothing failed to load
            assert outside == []  # no third-party request
        finally:
            browser.close()

    verified = subprocess.run(
        [sys.executable, "-m", "durable_graph", "verify", "--bundle", str(bundle), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PYTHONPATH": f"{REPO / 'shared'}:{REPO}",
            "PATH": "/usr/bin:/bin",
            "DURABLE_GRAPH_HOME": str(tmp_path / "elsewhere"),
        },
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["thread_id"] == ids["approved"]


def test_no_session_no_data(world: tuple[Served, dict[str, str]]) -> None:
    """Without the session cookie or the API key, a browser gets the sign-in page (401) and a
    program a JSON 401; neither sees a thread id. A wrong token does not sign in."""
    served, ids = world
    tid = ids["approved"]
    for path in (
        "/explorer",
        f"/explorer/threads/{tid}",
        f"/explorer/threads/{tid}/bundle",
        f"/explorer/threads/{tid}/diff?a=0&b=1",
        "/explorer/approvals",
    ):
        page = requests.get(served.url + path, headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 401 and "Sign in" in page.text, path
        assert not any(t in page.text for t in ids.values()), path
        program = requests.get(served.url + path, timeout=10)
        assert program.status_code == 401 and program.json()["error"]["code"] == "unauthorized"
    wrong = requests.post(
        f"{served.url}/explorer/login",
        data={"token": "not-the-token-0000"},
        timeout=10,
        allow_redirects=False,
    )
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    keyed = requests.get(
        f"{served.url}/explorer/threads/{tid}", headers={"x-api-key": served.api_key}, timeout=10
    )
    assert keyed.status_code == 200 and tid in keyed.text
