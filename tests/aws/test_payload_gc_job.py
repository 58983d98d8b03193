"""The sweeper's `gc` job (`functions/sweeper` + `backends/aws/sweeper.collect_payloads`), on
moto: the chunks a worker wrote for a step that lost its append, and that it was killed before
leaving to the sweeper (no leftover names them), are deleted once the deployment's grace period
is over, every version of them on the versioned bucket the stack makes; the winner's stay, and
the thread verifies and runs to the end."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import build_runtime
from durable_graph.backends.aws.local_poller import LocalLambdaContext
from durable_graph.checkpoint import Task
from durable_graph.clock import ManualClock
from durable_graph.ports.transition_queue import TransitionMessage
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from functions.sweeper import handler as sweeper_module
from functions.sweeper.handler import handler as sweeper_handler
from tests.aws.conftest import AwsWorld
from tests.aws.test_leftovers import COUNT, worker_backend
from tests.conformance.test_lost_appends import part_chunks, race_a_step, resume_to_the_end, stored
from tests.helpers import GRAPH

GC = {names.SWEEPER_JOB_KEY: names.GC_JOB, "source": "aws.events"}


def test_the_gc_job_deletes_what_a_killed_worker_never_left(
    aws_factory: Callable[..., AwsWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a worker (no payload delete) whose step lost its append, killed before it left
    its two chunks to the sweeper, on a versioned payload bucket
    When the gc job runs before the grace period (an hour) is over, then after it
    Then the first deletes nothing; the second deletes the two chunks, every version, reports
    them, and keeps the winner's; the thread verifies and resumes to the end."""
    world = aws_factory(graph="tests.big_state_graphs:parts_graph")
    bucket = world.resources.settings.bucket
    world.clients.s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    killed = dataclasses.replace(worker_backend(world), leftovers=None)
    race = race_a_step(killed, None, COUNT)
    assert all(stored(killed, ref) for ref in race.mine)
    clock = ManualClock(datetime.now(UTC))
    settings = world.resources.settings.model_copy(update={"payload_deletes": True})
    rt = build_runtime(settings, world.clients, clock=clock)
    monkeypatch.setattr(sweeper_module, "runtime", lambda: rt)

    early = sweeper_handler(GC, LocalLambdaContext())
    assert early["job"] == "gc" and early["deleted"] == 0 and early["stopped"] is None
    assert all(stored(killed, ref) for ref in race.mine)
    clock.advance(settings.gc_grace_seconds + 60)
    late = sweeper_handler(GC, LocalLambdaContext())

    assert late["deleted"] == 2 and "doomed" not in late
    assert late["deleted_bytes"] == sum(ref.size for ref in race.mine)
    s3 = raw_payloads(rt.backend.payloads)
    for ref in race.mine:
        key = s3.key_for(ref.sha256)  # type: ignore[attr-defined]
        listing = world.clients.s3.list_object_versions(Bucket=bucket, Prefix=key)
        assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    assert all(stored(killed, ref) for ref in part_chunks(race.winner))
    assert verify_thread(rt.backend, "race").ok
    resume_to_the_end(race, COUNT)


def test_a_queued_message_body_outlives_the_grace(
    aws_factory: Callable[..., AwsWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a transition whose body is over SQS's limit (kept in S3 by the claim check) still
    waiting in the queue, as it may for days in the DLQ
    When the gc job runs after its grace period
    Then the body, which no record names, is not deleted (it lives under the queue's own
    prefix, which the collector does not list), and the message is still delivered whole."""
    world = aws_factory()
    clock = ManualClock(datetime.now(UTC))
    settings = world.resources.settings.model_copy(update={"payload_deletes": True})
    rt = build_runtime(settings, world.clients, clock=clock)
    monkeypatch.setattr(sweeper_module, "runtime", lambda: rt)
    big = TransitionMessage(
        thread_id="waiting",
        step=0,
        task=Task(id="0:a", node="a", arg={"text": "z" * 300_000}),
        graph=GRAPH,
    )
    rt.backend.queue.send([big])
    bucket = world.resources.settings.bucket
    kept = world.clients.s3.list_objects_v2(Bucket=bucket, Prefix=names.MESSAGE_PREFIX)
    assert kept.get("KeyCount") == 1

    clock.advance(settings.gc_grace_seconds + 60)
    late = sweeper_handler(GC, LocalLambdaContext())

    assert late["deleted"] == 0
    assert (
        world.clients.s3.list_objects_v2(Bucket=bucket, Prefix=names.MESSAGE_PREFIX)["KeyCount"]
        == 1
    )
    [delivery] = rt.backend.queue.receive()
    assert delivery.message == big
