"""Fixtures for the AWS runtime on moto: resources, the functions' environment, pollers.

`aws` gives a fresh in-process moto account per test, with the table, buckets, queues and topic
created through the real APIs, the environment the CDK stack would give the functions set (and
restored afterwards), and the cached runtime of the functions reset around the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from durable_graph.backends.aws import dead_letters, factory, lambda_worker
from durable_graph.backends.aws.factory import AwsClients, AwsRuntime
from durable_graph.backends.aws.local_poller import EventSourcePoller
from durable_graph.checkpoint import Checkpoint
from tests.aws.resources import (
    REGION,
    Resources,
    SentEmail,
    clients,
    create_resources,
    published,
    sent_emails,
)


@dataclass
class AwsWorld:
    clients: AwsClients
    resources: Resources

    @property
    def rt(self) -> AwsRuntime:
        """The runtime the functions use (built from the environment, like at cold start)."""
        return lambda_worker.worker().rt

    def poller(self, **kwargs: Any) -> EventSourcePoller:
        from functions.worker.handler import handler

        return EventSourcePoller(
            self.clients.sqs, self.resources.settings.queue_url, handler, **kwargs
        )

    def drain(self, **kwargs: Any) -> EventSourcePoller:
        poller = self.poller(**kwargs)
        poller.drain()
        return poller

    def head(self, thread_id: str) -> Checkpoint:
        head = self.rt.backend.checkpoints.head_checkpoint(thread_id)
        assert head is not None, f"no thread {thread_id}"
        return head

    def chain(self, thread_id: str) -> list[Checkpoint]:
        return self.rt.backend.checkpoints.list_checkpoints(thread_id, newest_first=False)

    def notifications(self) -> list[dict[str, Any]]:
        return published(self.clients, self.resources)

    def sent_emails(self) -> list[SentEmail]:
        """What SES accepted (moto), oldest first."""
        return sent_emails()

    def queue_depth(self) -> int:
        return self.rt.backend.queue.depth()


def reset_runtime() -> None:
    from functions.s3_trigger.handler import starter

    starter.cache_clear()
    lambda_worker.worker.cache_clear()
    dead_letters.settler.cache_clear()
    factory.reset()


@pytest.fixture
def aws_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AwsWorld]]:
    """Build the world with options (graph, max_receives, ...), inside one moto account."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DurableGraphTests")
    with mock_aws():
        aws = clients()

        def build(**options: Any) -> AwsWorld:
            resources = create_resources(aws, **options)
            for key, value in resources.env().items():
                monkeypatch.setenv(key, value)
            reset_runtime()
            return AwsWorld(clients=aws, resources=resources)

        try:
            yield build
        finally:
            reset_runtime()


@pytest.fixture
def aws(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    return aws_factory()


ROOT = Path(__file__).resolve().parents[2]
CHAIN = "tests.aws.graphs:chain_graph"


@pytest.fixture
def chain(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AwsWorld:
    """The three-step chain graph, its side effects counted in files under `tmp_path`."""
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    return aws_factory(graph=CHAIN)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server in its own process (`tests/aws/moto_server.py`), for tests whose AWS
    calls come from several processes; its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.aws.moto_server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
