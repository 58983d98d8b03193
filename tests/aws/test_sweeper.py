"""The sweeper (`functions/sweeper` + `backends/aws/sweeper`): stalled threads are re-driven,
lagging thread records repaired, and what sits in the DLQ is reported; on the retention
schedule, values older than a graph's policy are erased. Time is passed in (`now=`, a
`ManualClock`), not waited for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durable_graph.backends.aws import dynamodb_store, names
from durable_graph.backends.aws.factory import build_runtime
from durable_graph.backends.aws.local_poller import LocalLambdaContext
from durable_graph.backends.aws.sweeper import sweep
from durable_graph.clock import ManualClock
from durable_graph.erasure_record import load_erasures, parse_erasures
from durable_graph.retention import RETENTION_ACTOR
from durable_graph.verification import verify_thread
from functions.sweeper import handler as sweeper_module
from functions.sweeper.handler import handler as sweeper_handler
from tests.aws.conftest import AwsWorld
from tests.aws.faults import WRITE, Fault, checkpoint_put, thread_put

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
    Fault(f"after-call.{WRITE}", checkpoint_put).install(rt.clients.dynamodb)
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


def test_thread_record_lagging_its_head_is_repaired(
    chain: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a thread that completed but whose worker died before updating the thread record
    (and whose message was lost), then the sweeper brings the record up to the head. (The head
    lags only where a checkpoint too large to share its transaction is written alone.)"""
    monkeypatch.setattr(dynamodb_store, "FOLD_EXTRA_UNITS", 0)
    rt = chain.rt
    rt.graph.start({}, thread_id="lag-1")
    Fault(f"before-call.{WRITE}", thread_put).install(rt.clients.dynamodb)
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


RETAINED = "tests.aws.graphs:retained_graph"


def payload_versions(world: AwsWorld) -> list[str]:
    """Every object version (and delete marker) in the payload bucket."""
    listing = world.clients.s3.list_object_versions(Bucket=world.resources.settings.bucket)
    return [v["Key"] for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]]


def test_scheduled_retention_erases_only_what_the_policy_no_longer_allows(
    aws_factory: Callable[..., AwsWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a deployment of a graph kept 30 days (versioned payload bucket, as the stack
    makes it) with a completed thread whose notes live in S3, and the sweeper function on a
    skipping clock
    When the retention rule's event arrives today, and again 31 days later
    Then today nothing is written; 31 days later every value is erased under a signed
    tombstone by system:retention, the notes' object (every version) is gone, the thread
    still verifies and names the erased fields, and a third run writes nothing."""
    world = aws_factory(graph=RETAINED)
    world.clients.s3.put_bucket_versioning(
        Bucket=world.resources.settings.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    clock = ManualClock(datetime.now(UTC))
    rt = build_runtime(world.resources.settings, world.clients, clock=clock)
    monkeypatch.setattr(sweeper_module, "runtime", lambda: rt)
    rt.graph.start({"patient": "Jane Roe"}, thread_id="rec-1")
    world.drain()
    assert world.head("rec-1").status == "completed"
    assert len(payload_versions(world)) == 1  # the notes' chunk
    event = {names.SWEEPER_JOB_KEY: names.RETENTION_JOB, "source": "aws.events"}

    today = sweeper_handler(event, LocalLambdaContext())
    assert today == {
        "job": "retention",
        "erased": {},
        "totals": {"checked": 1, "erased": 0, "unchanged": 1, "skipped": 0, "failed": 0},
        "finished": True,
    }
    assert rt.backend.checkpoints.get_records("rec-1", ["erasure#1"]) == {}

    clock.advance(31 * 24 * 3600)
    later = sweeper_handler(event, LocalLambdaContext())

    assert later["erased"] == {"rec-1": [0, 1]} and later["finished"] is True
    assert later["totals"] == {"checked": 1, "erased": 1, "unchanged": 0, "skipped": 0, "failed": 0}
    assert payload_versions(world) == []
    report = verify_thread(rt.backend, "rec-1")
    assert report.ok, report.reason
    assert report.erased == {0: ["notes", "outcome", "patient"], 1: ["notes", "outcome"]}
    (tombstone,), _ = parse_erasures(load_erasures(rt.backend.checkpoints, "rec-1"))
    assert tombstone.actor == RETENTION_ACTOR and tombstone.signature
    assert tombstone.erased_at.startswith(clock.now().date().isoformat())
    assert tombstone.reason.startswith("retention: values older than 30 days")
    assert "Jane Roe" not in json.dumps(
        world.clients.dynamodb.scan(TableName=world.resources.settings.table_name)["Items"]
    )
    assert sweeper_handler(event, LocalLambdaContext())["erased"] == {}


@dataclass
class ShortInvocation(LocalLambdaContext):
    """An invocation with time for one thread: 31 s left at the first check (the job keeps
    30 s back), none after."""

    left_ms: list[int] = field(default_factory=lambda: [31_000])

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms.pop(0) if self.left_ms else 0


def test_scheduled_retention_continues_across_invocations_that_run_out_of_time(
    aws_factory: Callable[..., AwsWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 3 completed threads of a graph kept 30 days, 31 days later, and invocations with
    time for one thread each
    When the retention event arrives 3 times
    Then each invocation erases the next thread and stops, the third finishes the pass, and
    every thread has one tombstone; the next pass starts over and writes nothing."""
    world = aws_factory(graph=RETAINED)
    clock = ManualClock(datetime.now(UTC))
    rt = build_runtime(world.resources.settings, world.clients, clock=clock)
    monkeypatch.setattr(sweeper_module, "runtime", lambda: rt)
    for i in range(3):
        rt.graph.start({"patient": f"Patient {i}"}, thread_id=f"rec-{i}")
        world.drain()
        clock.advance(1)
    clock.advance(31 * 24 * 3600)
    event = {names.SWEEPER_JOB_KEY: names.RETENTION_JOB, "source": "aws.events"}

    reports = [sweeper_handler(event, ShortInvocation()) for _ in range(3)]

    assert [list(r["erased"]) for r in reports] == [["rec-0"], ["rec-1"], ["rec-2"]]
    assert [r["finished"] for r in reports] == [False, False, True]
    for i in range(3):
        assert len(load_erasures(rt.backend.checkpoints, f"rec-{i}")) == 1
    again = sweeper_handler(event, LocalLambdaContext())
    assert again["erased"] == {} and again["finished"] is True
    assert again["totals"]["checked"] == 3
