"""The audit routes of the HTTP API, the same on every store: memory, SQLite, DynamoDB + S3.

The resolver runs in-process over each store (the API Lambda's code path); requests carry the
local API key. Given the chat thread written by an application that is then deleted, `verify`,
`diff` and `export` answer from the store alone; `fork` loads the graph.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_graph.api import build_resolver, local_api
from durable_graph.api.local import key_paths
from durable_graph.bundle import Bundle, verify_bundle
from tests.api.conftest import Client, Reply
from tests.audit.conftest import THREAD, Store


class AuditClient:
    def __init__(self, store: Store, home: Path) -> None:
        api = local_api(
            home, store.backend, public_url="https://x.example.test", graphs=(store.graph_name,)
        )
        self.client = Client(build_resolver(api))
        self.key = key_paths(home)["api_key"].read_text().strip()

    def get(self, path: str) -> Reply:
        return self.client.request("GET", path, headers={"x-api-key": self.key})

    def post(self, path: str, body: dict[str, Any]) -> Reply:
        headers = {"x-api-key": self.key, "Content-Type": "application/json"}
        return self.client.request("POST", path, headers=headers, body=json.dumps(body))


@pytest.fixture
def http(chat: Store, tmp_path: Path) -> AuditClient:
    return AuditClient(chat, tmp_path / "api-home")


def test_verify_diff_export_over_http(
    http: AuditClient, chat: Store, absent_app: Callable[[], bool]
) -> None:
    verified = http.get(f"/threads/{THREAD}/verify")
    assert verified.status == 200
    assert verified.json()["ok"] is True and verified.json()["checked"] == 9
    assert verified.json()["signed_steps"] == [6, 8]
    changed = http.get(f"/threads/{THREAD}/diff?a=6&b=7")
    assert changed.status == 200
    assert changed.json()["changes"] == [
        {"field": "approved", "change": "changed", "old": None, "new": True}
    ]
    grown = http.get(f"/threads/{THREAD}/diff?a=2&b=3").json()["changes"]
    assert [set(c) for c in grown if c["field"] == "messages"] == [
        {"field", "change", "appended", "old_length", "new_length"}
    ]
    exported = http.get(f"/threads/{THREAD}/export")
    assert exported.status == 200
    bundle = Bundle.model_validate(exported.json())
    assert len(bundle.records) == 9 and verify_bundle(bundle).ok
    assert not absent_app(), "an audit route imported the application"


def test_fork_over_http(http: AuditClient, chat: Store) -> None:
    forked = http.post(
        f"/threads/{THREAD}/fork",
        {"step": 6, "new_thread_id": "c1-http", "values": {"approved": False}},
    )
    assert forked.status == 201, forked.body
    doc = forked.json()
    assert doc["thread_id"] == "c1-http" and doc["step"] == 0
    assert doc["status"] == "suspended" and doc["values"]["approved"] is False
    again = http.post(f"/threads/{THREAD}/fork", {"step": 6, "new_thread_id": "c1-http"})
    assert again.status == 409 and again.error["code"] == "thread_exists"
    assert http.get("/threads/c1-http/verify").json()["ok"] is True


BAD_REQUESTS: list[tuple[str, str, dict[str, Any] | None, int, str | None]] = [
    ("GET", "/threads/nope/verify", None, 404, "thread_not_found"),
    ("GET", "/threads/nope/export", None, 404, "thread_not_found"),
    ("GET", f"/threads/{THREAD}/diff?a=1", None, 400, "invalid_input"),
    ("GET", f"/threads/{THREAD}/diff?a=1&b=x", None, 400, "invalid_input"),
    ("GET", f"/threads/{THREAD}/diff?a=1&b=99", None, 404, "step_not_found"),
    ("POST", f"/threads/{THREAD}/fork", {"step": 99, "new_thread_id": "f"}, 404, None),
    ("POST", f"/threads/{THREAD}/fork", {"step": 1}, 400, "invalid_input"),
    ("POST", f"/threads/{THREAD}/fork", {"step": 1, "new_thread_id": "__x"}, 400, None),
    ("POST", "/threads/nope/fork", {"step": 0, "new_thread_id": "g"}, 404, "thread_not_found"),
]


def test_bad_audit_requests_are_4xx_and_change_nothing(http: AuditClient, chat: Store) -> None:
    before = [t.thread_id for t in chat.backend.checkpoints.list_threads()]
    for method, path, body, status, code in BAD_REQUESTS:
        reply = http.get(path) if method == "GET" else http.post(path, body or {})
        assert reply.status == status, (path, body, reply.body)
        if code is not None:
            assert reply.error["code"] == code, (path, reply.body)
    assert [t.thread_id for t in chat.backend.checkpoints.list_threads()] == before


def test_audit_routes_need_credentials(http: AuditClient) -> None:
    for path in (f"/threads/{THREAD}/verify", f"/threads/{THREAD}/export"):
        assert http.client.request("GET", path).status == 401
