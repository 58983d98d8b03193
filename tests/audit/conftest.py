"""One audit suite over every store: memory, SQLite and DynamoDB + S3 (moto).

`store` opens the same application thread on each backend and hands the test a store URI the
CLI resolves like a user's (`memory://...`, `sqlite:///...`, `aws://STACK` read from the
CloudFormation stack's outputs). The application that wrote the thread is a module written to
`tmp_path`, and `absent_app` deletes it: read commands must not need it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor
from durable_graph.cli import common, main
from durable_graph.loader import load_graph
from durable_graph.runtime import CompiledGraph
from durable_graph.store_uri import forget_memory_stores, open_store
from tests.aws.resources import REGION, Resources, clients, create_resources

THREAD = "c1"
KINDS = ["memory", "sqlite", "aws"]

APP_SOURCE = """
from tests.ledger.graphs import build

graph = build().compile(interrupt_before=["review"])
"""

# The outputs `infra/stack.py` declares, as CloudFormation returns them for a deployed stack.
STACK_TEMPLATE_RESOURCE = {"Topic": {"Type": "AWS::SNS::Topic"}}


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Store:
    kind: str
    uri: str
    backend: Backend
    app_module: str
    resources: Resources | None = None

    def run(self, *args: str) -> Done:
        """`durable-graph --store URI ARGS...` in this process (a fresh CLI cache each time,
        as in a new process)."""
        common.backend.cache_clear()
        common.graph.cache_clear()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--store", self.uri, *args])
        return Done(code, out.getvalue(), err.getvalue())

    def json(self, *args: str, expect: int = 0) -> Any:
        done = self.run(*args, "--json")
        assert done.code == expect, (done.code, done.out, done.err)
        return done.json()

    @property
    def graph_name(self) -> str:
        return f"{self.app_module}:graph"

    def app(self) -> CompiledGraph:
        return load_graph(self.graph_name).with_backend(self.backend)


def run_chat(app: CompiledGraph, thread_id: str = THREAD) -> None:
    """0 input, 1-6 `reply` (suspends before `review`), 7 the decision, 8 `review` (done)."""
    app.invoke({"attachment": "A" * 10_000}, thread_id=thread_id)
    app.resume(
        thread_id, values={"approved": True}, actor=Actor(kind="human", id="alice@example.com")
    )


def publish_stack(resources: Resources) -> str:
    """A CloudFormation stack whose outputs name the resources, as `cdk deploy` leaves them."""
    settings = resources.settings
    outputs = {
        "TableName": settings.table_name,
        "PayloadBucketName": settings.bucket,
        "TransitionQueueUrl": settings.queue_url,
        "DeadLetterQueueUrl": settings.dlq_url,
        "ApprovalsTopicArn": settings.topic_arn,
        "LedgerKeyArn": settings.ledger_key_id,
    }
    template = {
        "Resources": STACK_TEMPLATE_RESOURCE,
        "Outputs": {k: {"Value": v} for k, v in outputs.items() if v},
    }
    name = f"dg-stack-{uuid.uuid4().hex[:6]}"
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@contextlib.contextmanager
def opened(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    module = f"audit_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(APP_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    if kind == "aws":
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "DURABLE_GRAPH_STORE"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            resources = create_resources(clients())
            uri = f"aws://{publish_stack(resources)}"
            yield Store(kind, uri, open_store(uri), module, resources)
        return
    uri = f"memory://{module}" if kind == "memory" else f"sqlite://{tmp_path / 'store'}"
    backend = open_store(uri)
    try:
        yield Store(kind, uri, backend, module)
    finally:
        backend.close()


@pytest.fixture(params=KINDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    with opened(str(request.param), tmp_path, monkeypatch) as built:
        try:
            yield built
        finally:
            common.backend.cache_clear()
            common.graph.cache_clear()
            forget_memory_stores()
            sys.modules.pop(built.app_module, None)


@pytest.fixture
def chat(store: Store) -> Store:
    run_chat(store.app())
    return store


@pytest.fixture
def absent_app(chat: Store, tmp_path: Path) -> Callable[[], bool]:
    """Delete the application that wrote the thread; returns 'was it imported again?'."""
    (tmp_path / f"{chat.app_module}.py").unlink()
    sys.modules.pop(chat.app_module, None)
    importlib.invalidate_caches()
    return lambda: chat.app_module in sys.modules
