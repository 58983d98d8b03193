"""Fixtures for the API tests: the resolver in-process over a real embedded store, a signed
webhook sender, and a snapshot of everything stored (to prove a refused request changed nothing).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from durable_graph.api import Api, build_resolver, local_api
from durable_graph.api.local import key_paths
from durable_graph.api.proxy import event_from_http, http_from_result
from durable_graph.api.webhooks import sign
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.file_copies import COPIES
from durable_graph.clock import ManualClock

REPO = Path(__file__).resolve().parents[2]
GRAPH = "examples.email_approval:graph"
PUBLIC_URL = "https://approvals.example.test"
PROMPT = {"user_prompt": "pay the supplier"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    set_cookies: list[str] = field(default_factory=list)  # every Set-Cookie header, in order

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def error(self) -> dict[str, Any]:
        """The `error` object of a JSON error reply (asserting it has the documented shape)."""
        doc = self.json()
        assert set(doc) == {"error"}, doc
        assert {"code", "message"} <= set(doc["error"]), doc
        assert doc["error"]["message"], doc
        error: dict[str, Any] = doc["error"]
        return error


@dataclass
class Client:
    """Sends HTTP-shaped requests through the resolver as API Gateway proxy events."""

    resolver: APIGatewayRestResolver

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
    ) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        event = event_from_http(method, path, list((headers or {}).items()), data)
        status, pairs, payload = http_from_result(self.resolver.resolve(event, None))  # type: ignore[arg-type]
        cookies = [v for k, v in pairs if k.lower() == "set-cookie"]
        return Reply(status, {k.lower(): v for k, v in pairs}, payload, cookies)


@dataclass
class LocalApi:
    """The API over a real SQLite home, a manual clock, and the keys it created."""

    home: Path
    backend: Backend
    api: Api
    client: Client
    clock: ManualClock
    secret: str
    api_key: str
    counter: list[int] = field(default_factory=lambda: [0])

    def sent_files(self) -> list[Path]:
        """The outbox's file copies of the mail sent (written in the background: waited for)."""
        COPIES.drain()
        folder = self.home / "outbox" / "sent"
        return sorted(folder.iterdir()) if folder.exists() else []

    def signed(
        self,
        body: bytes,
        *,
        webhook_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        self.counter[0] += 1
        return {
            **sign(
                secret or self.secret,
                webhook_id or f"msg_{self.counter[0]}",
                timestamp if timestamp is not None else int(self.clock.now().timestamp()),
                body,
            ),
            "Content-Type": "application/json",
        }

    def start(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        webhook_id: str | None = None,
        **extra: Any,
    ) -> Reply:
        body = json.dumps({"input": dict(values or PROMPT), **extra}).encode()
        return self.client.request(
            "POST", "/threads", headers=self.signed(body, webhook_id=webhook_id), body=body
        )

    def settle(self, thread_id: str) -> str:
        """Run the thread's queued tasks (the worker's job) until it stops; its status."""
        return self.api.graph(GRAPH).run_until_settled(thread_id).status

    def suspended_thread(self) -> str:
        reply = self.start()
        assert reply.status == 201, reply.body
        thread_id: str = reply.json()["thread"]["thread_id"]
        assert self.settle(thread_id) == "suspended"
        return thread_id

    def notifications(self) -> list[dict[str, Any]]:
        COPIES.drain()  # the file copy is written in the background
        path = self.home / "outbox" / "notifications.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def link(self, thread_id: str) -> str:
        """The approval link of the thread's latest notification."""
        found = [n for n in self.notifications() if n["thread_id"] == thread_id]
        assert found, f"no notification for {thread_id}"
        link: str = found[-1]["links"]["approval"]
        assert link.startswith(f"{PUBLIC_URL}/approvals/")
        return link

    def path_of(self, link: str) -> str:
        return link.removeprefix(PUBLIC_URL)

    def authed(self, **headers: str) -> dict[str, str]:
        return {"x-api-key": self.api_key, **headers}

    def snapshot(self) -> dict[str, Any]:
        return store_snapshot(self.home)


def store_snapshot(home: Path) -> dict[str, Any]:
    """Every row of every table, every payload and outbox file: what "no state changed" means
    (the outbox's file copies this process handed to its background writer written first)."""
    COPIES.drain()
    tables: dict[str, Any] = {}
    with sqlite3.connect(home / "state.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in sorted(names):
            rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
            tables[name] = sorted(rows, key=repr)
    files = {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and p.parent.name != "keys" and not p.name.startswith("state.db")
    }
    return {"tables": tables, "files": files}


def local_store(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Backend, ManualClock]:
    """An embedded store in `home`, on a manual clock at the current second, with `home` as
    `$DURABLE_GRAPH_HOME` and the checkout as the working folder (as `serve` runs there)."""
    monkeypatch.setenv("DURABLE_GRAPH_HOME", str(home))
    monkeypatch.chdir(REPO)
    clock = ManualClock(datetime.fromtimestamp(int(time.time()), UTC))
    return local_backend(home, clock=clock), clock


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalApi]:
    backend, clock = local_store(tmp_path, monkeypatch)
    api = local_api(tmp_path, backend, public_url=PUBLIC_URL, graphs=(GRAPH,), clock=clock)
    paths = key_paths(tmp_path)
    yield LocalApi(
        home=tmp_path,
        backend=backend,
        api=api,
        client=Client(build_resolver(api)),
        clock=clock,
        secret=paths["webhook"].read_text().strip(),
        api_key=paths["api_key"].read_text().strip(),
    )
    backend.close()


@dataclass
class Served:
    """A real `durable-graph serve` process on a free port of 127.0.0.1."""

    url: str
    home: Path
    proc: subprocess.Popen[str]
    log: list[str]
    secret: str
    api_key: str

    def start(self, values: Mapping[str, Any] | None = None, **extra: Any) -> requests.Response:
        return self.post_signed(json.dumps({"input": dict(values or PROMPT), **extra}).encode())

    def post_signed(self, body: bytes) -> requests.Response:
        """POST /threads with `body` as a webhook signed with this store's secret."""
        headers = sign(self.secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
        return requests.post(
            f"{self.url}/threads",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )

    def printed(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """The first match of `pattern` in what serve printed, waiting for it to be printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                found = re.search(pattern, line)
                if found:
                    return found
            time.sleep(0.05)
        raise AssertionError(f"serve printed nothing matching {pattern!r}: {self.log}")

    def thread(self, thread_id: str) -> dict[str, Any]:
        reply = requests.get(
            f"{self.url}/threads/{thread_id}", headers={"x-api-key": self.api_key}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        doc: dict[str, Any] = reply.json()
        return doc

    def wait_for_status(self, thread_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.thread(thread_id)
            if doc["status"] == status:
                return doc
            assert time.monotonic() < deadline, f"{thread_id} is {doc['status']}, not {status}"
            time.sleep(0.05)

    def wait_for_link(self, thread_id: str, timeout: float = 30) -> str:
        """The approval link from the outbox notification of this thread."""
        path = self.home / "outbox" / "notifications.jsonl"
        deadline = time.monotonic() + timeout
        while True:
            if path.exists():
                for line in path.read_text().splitlines():
                    note = json.loads(line)
                    if note["thread_id"] == thread_id and note["links"].get("approval"):
                        link: str = note["links"]["approval"]
                        return link
            assert time.monotonic() < deadline, f"no approval link for {thread_id}"
            time.sleep(0.05)

    def sent(self, expect: int = 0, timeout: float = 10) -> list[Path]:
        """The outbox's file copies of the mail sent, once there are `expect` of them (they
        are written in the background, a moment after the row: `file_copies.py`)."""
        folder = self.home / "outbox" / "sent"
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(folder.iterdir()) if folder.exists() else []
            if len(found) >= expect or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def serve(home: Path, *extra: str) -> Served:
    env = {
        **os.environ,
        "DURABLE_GRAPH_HOME": str(home),
        # This checkout's code, also where the editable install points elsewhere.
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable_graph",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
    if match is None:
        proc.kill()
        raise AssertionError(f"serve did not start: {first!r} {proc.stderr.read()}")
    log: list[str] = []
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=lambda s=stream: log.extend(s), daemon=True).start()
    paths = key_paths(home)
    return Served(
        url=match.group(1),
        home=home,
        proc=proc,
        log=log,
        secret=paths["webhook"].read_text().strip(),
        api_key=paths["api_key"].read_text().strip(),
    )


def stop(served: Served) -> int:
    served.proc.send_signal(signal.SIGTERM)
    return served.proc.wait(timeout=15)


@contextmanager
def serving(home: Path, *extra: str) -> Iterator[Served]:
    """`serve(home, *extra)` for the block, stopped after it unless it already ended."""
    running = serve(home, *extra)
    yield running
    if running.proc.poll() is None:
        stop(running)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as running:
        yield running
