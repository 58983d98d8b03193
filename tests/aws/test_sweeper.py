"""The sweeper (`functions/sweeper` + `backends/aws/sweeper`): stalled threads are re-driven,
lagging thread records repaired, and what sits in the DLQ is reported. Time is passed in
(`now=`), not waited for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durable_graph.backends.aws.local_poller import LocalLambdaContext
from durable_graph.backends.aws.sweeper import sweep
from functions.sweeper.handler import handler as sweeper_handler
from tests.aws.conftest import AwsWorld
from tests.aws.faults import Fault, checkpoint_put, thread_put

CHAIN = "tests.aws.graphs:chain_graph"


def purge(world: AwsWorld) -> None:
    """Lose every queued message (expired retention, an operator's purge...)."""
    world.clients.sqs.purge_queue(QueueUrl=world.resources.settings.queue_url)


@pytest.fixture
def chain(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AwsWorld:
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    return aws_factory(graph=CHAIN, stale_seconds=600)


def test_stalled_thread_is_redriven_once_it_is_stale(chain: AwsWorld) -> None:
    """Given a worker that died right after committing step 1 and a message that was then
    lost, when the sweeper runs before the thread is stale, then it leaves it alone; when it
    runs after, then it re-sends step 1's task and the thread completes."""
    rt = chain.rt
    rt.graph.start({}, thread_id="stuck-1")
    Fault("after-call.dynamodb.PutItem", checkpoint_put).install(rt.clients.dynamodb)
    chain.poller(skip_waits=False).drain()
    purge(chain)
    assert (chain.head("stuck-1").step, chain.queue_depth()) == (1, 0)

    early = sweep(rt, now=datetime.now(UTC) + timedelta(seconds=60))
    assert early.resent == {}
    late = sweep(rt, now=datetime.now(UTC) + timedelta(seconds=601))
    assert late.resent == {"stuck-1": 1}
    chain.drain()
    assert chain.head("stuck-1").status == "completed"
    assert chain.head("stuck-1").values["log"] == ["a", "b", "c"]


def test_thread_record_lagging_its_head_is_repaired(chain: AwsWorld) -> None:
    """Given a thread that completed but whose worker died before updating the thread record
    (and whose message was lost), then the sweeper brings the record up to the head."""
    rt = chain.rt
    rt.graph.start({}, thread_id="lag-1")
    Fault("before-call.dynamodb.UpdateItem", thread_put).install(rt.clients.dynamodb)
    chain.poller(skip_waits=False).drain()
    purge(chain)
    assert chain.head("lag-1").status == "completed"
    assert rt.backend.checkpoints.get_thread("lag-1").status == "running"  # type: ignore[union-attr]

    report = sweep(rt, now=datetime.now(UTC) + timedelta(seconds=601))
    assert report.resynced == ["lag-1"] and report.resent == {}
    assert rt.backend.checkpoints.get_thread("lag-1").status == "completed"  # type: ignore[union-attr]


def test_sweeper_function_reports_threads_in_the_dlq(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given a poison message parked in the DLQ, when the scheduled function runs, then its
    report names the DLQ depth and the thread."""
    world = aws_factory(graph="tests.aws.graphs:poison_graph", max_receives=2)
    world.rt.graph.start({}, thread_id="poison-2")
    world.drain()
    report = sweeper_handler({"source": "aws.events"}, LocalLambdaContext())
    assert report["dlq_depth"] == 1
    assert report["dlq_threads"] == ["poison-2"]
    assert report["resent"] == {}
