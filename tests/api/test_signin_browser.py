"""The explorer's hosted-UI sign-in in a real browser: the API (configured as the api Lambda
configures it, from `ApiSettings`) behind serve's HTTP handler on 127.0.0.1, moto's user pool
and JWKS, the hosted-UI stand-in (`hosted_ui.py`), and Chromium following every redirect and
keeping the cookies itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from durable_graph.api import build_resolver
from durable_graph.api.signin import ID_COOKIE
from durable_graph.backends.local import local_backend
from durable_graph.cli.serve_commands import make_handler
from durable_graph.clock import SystemClock
from tests.api.hosted_ui import HostedUiStandIn, serving
from tests.api.test_pages import CHROMIUM, CHROMIUM_ARGS
from tests.api.test_signin import PASSWORD, USER, Pool, pool, signin_api
from tests.aws.conftest import endpoint
from tests.helpers import thread_record
from tests.local_http import in_background

__all__ = ["endpoint", "pool"]  # fixtures reused


@pytest.fixture
def site(pool: Pool, tmp_path: Path) -> Iterator[str]:
    """The API served over HTTP on a free port, signing in at the stand-in; its base URL."""
    resolver: list[Any] = []
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), make_handler(lambda event, context: resolver[0].resolve(event, context))
    )
    base = f"http://127.0.0.1:{server.server_port}"
    backend = local_backend(tmp_path)
    stand_in = HostedUiStandIn(pool.cognito, pool.pool_id, pool.client_id, USER, PASSWORD)
    with serving(stand_in) as ui:
        api, _ = signin_api(pool, ui.url, backend, tmp_path, base, SystemClock())
        resolver.append(build_resolver(api))
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        record = thread_record("browser-1", "suspended").model_copy(update={"updated_at": stamp})
        backend.checkpoints.put_thread(record, expected_revision=None)
        try:
            with in_background(server):
                yield base
        finally:
            backend.close()


def test_a_browser_signs_in_at_the_hosted_ui_and_lands_on_the_page_it_asked_for(
    site: str,
) -> None:
    """Given a browser with no cookies, when it opens the suspended threads, then it goes
    through the hosted UI and comes back to that very list, showing the thread; the session
    cookie is HttpOnly (no script reads it) and SameSite=Lax; without it, no data."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            hops: list[str] = []
            page.on("request", lambda request: hops.append(request.url))
            page.goto(f"{site}/explorer?status=suspended")
            assert page.url == f"{site}/explorer?status=suspended"
            assert "browser-1" in page.content()
            assert any("/oauth2/authorize?" in hop for hop in hops)
            assert any(hop.startswith(f"{site}/explorer/callback?code=") for hop in hops)
            (session,) = [c for c in context.cookies() if c["name"] == ID_COOKIE]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            assert page.evaluate("document.cookie") == ""

            context.clear_cookies()
            refused = context.request.get(f"{site}/explorer", max_redirects=0)
            assert refused.status == 401 and "browser-1" not in refused.text()
        finally:
            browser.close()
