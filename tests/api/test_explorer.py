"""The explorer's routes in-process on a real SQLite store: paging, refusals by field, the graph
drawn from the store, the approval inbox's links, and the Cognito authenticator AWS uses."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durable_graph.api import build_resolver, local_api
from durable_graph.api.config import Api
from durable_graph.api.local import key_paths
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.clock import ManualClock
from durable_graph.drawing import SHAPES_THREAD
from durable_graph.timetravel import diff, fork
from tests import loops
from tests.api.conftest import GRAPH, PUBLIC_URL, Client, Reply, local_store
from tests.helpers import thread_record

TOKEN = "session-token-for-tests-0123456789"
COOKIE = {"Cookie": f"durable_graph_explorer={TOKEN}", "Accept": "text/html"}


class Loop(BaseModel):
    n: int = 0
    limit: int = 3


def tick(state: Loop) -> dict[str, Any]:
    return {"n": state.n + 1}


LOOP = "tests.api.test_explorer:loop_graph"
loop_graph = loops.loop_graph(
    Loop, "tick", tick, more=lambda state: state.n < state.limit, name=LOOP
)


class Explorer:
    def __init__(self, home: Path, backend: Backend, api: Api, clock: ManualClock) -> None:
        self.home, self.backend, self.api, self.clock = home, backend, api, clock
        self.client = Client(build_resolver(api))
        self.api_key = key_paths(home)["api_key"].read_text().strip()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.client.request("GET", path, headers=COOKIE if headers is None else headers)

    def loop(self, thread_id: str, limit: int) -> None:
        # A long loop on purpose: past LangGraph's default recursion_limit of 25 steps.
        self.api.graph(LOOP).invoke(
            {"limit": limit}, {"recursion_limit": limit + 1}, thread_id=thread_id
        )


@pytest.fixture
def explorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Explorer]:
    backend, clock = local_store(tmp_path, monkeypatch)
    api = local_api(
        tmp_path,
        backend,
        public_url=PUBLIC_URL,
        graphs=(GRAPH, LOOP),
        clock=clock,
        explorer_token=TOKEN,
    )
    api.publish_shapes()  # as serve and the Lambda do when they start
    yield Explorer(tmp_path, backend, api, clock)
    backend.close()


def _ids(html: str) -> list[str]:
    return re.findall(r'<a href="/explorer/threads/[^"]+"><code>([^<]+)</code>', html)


def test_thousands_of_threads_page_by_fifty(explorer: Explorer) -> None:
    """Given 1,205 threads, the list shows 50 newest first, its "next page" link leads on with
    no thread twice, the status filter and the id search narrow it."""
    store = explorer.backend.checkpoints
    with explorer.backend.atomic():
        for i in range(1205):
            record = thread_record(f"bulk-{i:04d}", ("running", "failed")[i % 2])
            stamp = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"
            store.put_thread(
                record.model_copy(update={"updated_at": stamp}), expected_revision=None
            )
    first = explorer.get("/explorer")
    assert first.status == 200
    assert _ids(first.text) == [f"bulk-{i:04d}" for i in range(1204, 1154, -1)]
    nxt = re.search(r'href="(/explorer\?[^"]*cursor=[^"]+)"', first.text)
    assert nxt is not None
    second = explorer.get(nxt.group(1).replace("&amp;", "&"))
    assert _ids(second.text) == [f"bulk-{i:04d}" for i in range(1154, 1104, -1)]
    assert '<option value="" selected>any status</option>' in first.text
    failed_page = explorer.get("/explorer?status=failed").text
    assert '<option value="failed" selected>failed</option>' in failed_page
    failed = _ids(failed_page)
    assert len(failed) == 50 and all(int(t[-4:]) % 2 == 1 for t in failed)
    assert _ids(explorer.get("/explorer?q=bulk-012").text) == [
        f"bulk-{i:04d}" for i in range(129, 119, -1)
    ]


def test_lineage_finds_a_fork_behind_thousands_of_newer_threads(explorer: Explorer) -> None:
    """Given a fork made before 2,100 other threads were updated, the origin's page still
    names it (the fork index, not a scan of recent threads), and the fork names its origin."""
    explorer.loop("parent", 2)
    fork(explorer.api.graph(LOOP), "parent", 1, "child")
    store = explorer.backend.checkpoints
    with explorer.backend.atomic():
        for i in range(2100):
            newer = thread_record(f"newer-{i:04d}", "running")
            later = newer.model_copy(update={"updated_at": "2099-01-01T00:00:00.000000Z"})
            store.put_thread(later, expected_revision=None)
    page = explorer.get("/explorer/threads/parent").text
    assert 'forks: <a href="/explorer/threads/child"><code>child</code></a> (from step 1)' in page
    child = explorer.get("/explorer/threads/child").text
    assert 'forked from <a href="/explorer/threads/parent?step=1">' in child


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/explorer?status=sleeping", "status"),
        ("/explorer?cursor=garbage", "cursor"),
        ("/explorer/threads/t?step=abc", "step"),
        ("/explorer/threads/t?before=-1", "before"),
        ("/explorer/threads/t/diff?a=1", "b"),
        ("/explorer/static/secrets.txt", "name"),
    ],
)
def test_bad_parameters_are_refused_by_name(explorer: Explorer, path: str, field: str) -> None:
    explorer.loop("t", 2)
    reply = explorer.get(path, {"x-api-key": explorer.api_key})
    assert reply.status == 400, reply.body
    assert reply.error["field"] == field
    page = explorer.get(path)
    assert page.status == 400 and "text/html" in page.headers["content-type"]


def test_an_unknown_thread_is_a_404_page(explorer: Explorer) -> None:
    reply = explorer.get("/explorer/threads/nobody")
    assert reply.status == 404 and "nobody" in reply.text


def test_a_long_thread_pages_its_timeline_and_reads_any_step(explorer: Explorer) -> None:
    """Given a 121-step thread, its page lists the 50 newest steps; "older" and "newer" links
    walk the timeline; ?step= shows that step's state."""
    explorer.loop("long", 120)
    page = explorer.get("/explorer/threads/long")
    steps = [int(s) for s in re.findall(r'<tr id="step-(\d+)"', page.text)]
    assert steps == list(range(120, 70, -1))
    older = re.search(r'href="([^"]+)">Older steps', page.text)
    assert older is not None and older.group(1).endswith("before=71")
    middle = explorer.get("/explorer/threads/long?before=71")
    assert [int(s) for s in re.findall(r'<tr id="step-(\d+)"', middle.text)] == list(
        range(70, 20, -1)
    )
    assert 'before=121">← Newer' in middle.text
    last = explorer.get("/explorer/threads/long?before=21")
    assert [int(s) for s in re.findall(r'<tr id="step-(\d+)"', last.text)] == list(
        range(20, -1, -1)
    )
    assert "Older steps" not in last.text
    state = explorer.get("/explorer/threads/long?step=7")
    assert "State at step 7" in state.text and "&quot;n&quot;: 7" in state.text


def test_the_diff_page_shows_the_cli_diff(explorer: Explorer) -> None:
    explorer.loop("d", 3)
    page = explorer.get("/explorer/threads/d/diff?a=1&b=3")
    doc = diff(explorer.backend, "d", 1, 3)
    assert [c["field"] for c in doc["changes"]] == ["n"]
    assert "<code>n</code>" in page.text and "changed" in page.text
    assert "&quot;new&quot;: 3" in page.text and "&quot;old&quot;: 1" in page.text


def test_the_graph_is_drawn_from_the_published_shape_with_the_path(explorer: Explorer) -> None:
    """The API published the loop graph's shape when it started; the graph frame draws it
    with the node that ran, the edges taken and the end reached highlighted, under a policy
    that admits Mermaid's inline styles in the frame only."""
    explorer.loop("g", 2)
    assert explorer.backend.checkpoints.get_record(
        SHAPES_THREAD, f"shape#{LOOP}#{loop_graph.spec.version()}"
    )
    frame = explorer.get("/explorer/threads/g/graph")
    assert frame.status == 200
    text = frame.text
    assert "n_tick -.-&gt;|&quot;again&quot;| n_tick" in text
    assert "class n_tick ran" in text and "class end_ current" in text
    assert "linkStyle" in text
    assert "'unsafe-inline'" in frame.headers["content-security-policy"]
    assert "/explorer/static/mermaid.min.js" in text
    page = explorer.get("/explorer/threads/g")
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src" not in policy  # no script at all
    assert "default-src 'none'" in policy and "Drawn from the routes" not in page.text


def _forget_shapes(explorer: Explorer) -> None:
    with sqlite3.connect(explorer.home / "state.db") as conn:
        conn.execute("DELETE FROM records WHERE thread_id = ?", (SHAPES_THREAD,))


def test_a_graph_never_published_and_not_served_is_drawn_from_its_records(
    explorer: Explorer,
) -> None:
    """A store whose shapes were never published, read by an API that does not serve the
    thread's graph (threads run by the CLI, say): the graph is drawn from the routes the
    records took, and the page says so."""
    explorer.loop("h", 2)
    _forget_shapes(explorer)
    other = Explorer(
        explorer.home,
        explorer.backend,
        local_api(
            explorer.home,
            explorer.backend,
            public_url=PUBLIC_URL,
            graphs=(GRAPH,),
            explorer_token=TOKEN,
        ),
        explorer.clock,
    )
    page = other.get("/explorer/threads/h")
    assert "Drawn from the routes" in page.text
    frame = other.get("/explorer/threads/h/graph").text
    assert "n_tick --&gt; n_tick" in frame and "n_tick --&gt; end_" in frame


def test_the_graph_this_api_serves_is_drawn_whole_without_a_published_shape(
    explorer: Explorer,
) -> None:
    """As on AWS, where nothing publishes shapes: a thread of the graph this API serves is
    drawn from that graph's shape (its conditional edges with their labels), not from routes,
    and nothing is written to the store for it."""
    explorer.loop("served", 2)
    _forget_shapes(explorer)
    page = explorer.get("/explorer/threads/served")
    assert page.status == 200 and "Drawn from the routes" not in page.text
    frame = explorer.get("/explorer/threads/served/graph").text
    assert "n_tick -.-&gt;|&quot;again&quot;| n_tick" in frame
    assert (
        explorer.backend.checkpoints.get_record(
            SHAPES_THREAD, f"shape#{LOOP}#{loop_graph.spec.version()}"
        )
        is None
    )


def test_the_inbox_lists_waiting_threads_oldest_first_and_links_them(explorer: Explorer) -> None:
    """Given two suspended threads (the second started later) and a completed one, the inbox
    lists the two, oldest first; its button issues a fresh approval link that opens the page;
    a thread that is not waiting is refused (409)."""
    graph = explorer.api.graph(GRAPH)
    for tid in ("first", "second"):
        graph.invoke({"user_prompt": "pay"}, thread_id=tid)
        explorer.clock.advance(5)
    explorer.loop("done", 1)
    inbox = explorer.get("/explorer/approvals")
    assert re.findall(r"<code>(first|second|done)</code></a>", inbox.text) == ["first", "second"]
    link = explorer.client.request("POST", "/explorer/threads/second/approval", headers=COOKIE)
    assert link.status == 303
    location = link.headers["location"]
    assert location.startswith(f"{PUBLIC_URL}/approvals/")
    page = explorer.client.request(
        "GET", location.removeprefix(PUBLIC_URL), headers={"Accept": "text/html"}
    )
    assert page.status == 200 and "second" in page.text
    refused = explorer.client.request(
        "POST", "/explorer/threads/done/approval", headers={"x-api-key": explorer.api_key}
    )
    assert refused.status == 409 and refused.error["code"] == "not_suspended"


def test_sign_in_sets_a_strict_cookie_and_a_wrong_token_does_not(explorer: Explorer) -> None:
    ok = explorer.client.request("GET", f"/explorer/login?token={TOKEN}")
    assert ok.status == 303 and ok.headers["location"] == "/explorer"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"durable_graph_explorer={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    bad = explorer.client.request(
        "POST",
        "/explorer/login",
        body="token=wrong",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )
    assert bad.status == 401 and "set-cookie" not in bad.headers
    assert explorer.get("/explorer", {"Cookie": "durable_graph_explorer=wrong"}).status == 401


def test_a_graph_that_does_not_import_is_skipped_when_shapes_are_published(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An auditor serving a store without the application installed: the shape is not
    published (the explorer draws from the records), and serving does not fail."""
    backend = local_backend(tmp_path)
    try:
        api = local_api(tmp_path, backend, public_url=PUBLIC_URL, graphs=("nowhere.app:graph",))
        api.publish_shapes()
        assert "graph nowhere.app:graph not drawn from its shape" in caplog.text
    finally:
        backend.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        shapes = conn.execute("SELECT COUNT(*) FROM records WHERE thread_id = ?", (SHAPES_THREAD,))
        assert shapes.fetchone() == (0,)
