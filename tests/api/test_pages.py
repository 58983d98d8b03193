"""The approval page in a real browser: Debian's Chromium, headless, driven by Playwright.

`.ci/install-browser` installs /usr/bin/chromium (`make test` runs it first); Playwright's own
browser download is not used.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.api.conftest import Served

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path("/tmp")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-first-run",
]


def test_a_person_approves_in_a_browser(served: Served) -> None:
    """Given a thread suspended by `serve`, and the link from its outbox notification
    When Chromium opens the link, the draft is read, a comment typed and Approve clicked
    Then the page showed the draft email, the browser lands on an "Approved" page, the thread
    completes and exactly one email is sent. Screenshots go to /tmp."""
    thread_id = served.start().json()["thread"]["thread_id"]
    link = served.wait_for_link(thread_id)
    served.wait_for_status(thread_id, "suspended")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1100})
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if m.type == "error" else None)
            response = page.goto(link)
            assert response is not None and response.status == 200
            assert page.title() == "Approval requested: human_review"
            body = page.locator("main").inner_text()
            assert "wire USD 250,000" in body and "cfo@example.com" in body
            assert thread_id in body and "Link expires" in body
            page.screenshot(
                path=str(SCREENSHOTS / "durable-graph-approval-page.png"), full_page=True
            )

            page.fill("textarea[name=comment]", "Checked with the supplier by phone.")
            with page.expect_navigation():
                page.click("button[value=approve]")
            assert "Approved" in page.locator("h1").inner_text()
            page.screenshot(
                path=str(SCREENSHOTS / "durable-graph-approval-done.png"), full_page=True
            )
            assert blocked == []  # no CSP violation, nothing failed to load
        finally:
            browser.close()

    done = served.wait_for_status(thread_id, "completed")
    assert done["values"]["reviewer_comment"] == "Checked with the supplier by phone."
    assert len(served.sent(expect=1)) == 1
