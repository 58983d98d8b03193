"""On the AWS path, a delivery that dies inside `ctx.step` no longer fails the thread.

Before, the orphaned claim (owned by the dead execution environment, 300 s lease) made every
redelivery raise `EffectInProgress` until `maxReceiveCount` ran out and the thread was failed.
Now the next delivery (a higher `ApproximateReceiveCount`) takes the claim over at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from durable_graph.backends.aws.local_poller import InvocationCrashed
from durable_graph.effects import TAKEOVERS
from tests.aws.conftest import AwsWorld, reset_runtime
from tests.e2e import effect_graphs

GRAPH = "tests.e2e.effect_graphs:charge_graph"


def test_a_delivery_killed_inside_an_effect_is_taken_over_by_the_next(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the worker dies inside the effect (after the receiver got the call) on the first
    delivery, when SQS redelivers the message to another execution environment, then the
    thread completes, the takeover is counted, and the receiver saw one idempotency key."""
    monkeypatch.setenv("DG_EFFECT_DIR", str(tmp_path))
    world = aws_factory(graph=GRAPH, max_receives=2)
    crashes: list[int] = []

    def die_once() -> None:
        if not crashes:
            crashes.append(1)
            raise InvocationCrashed("killed inside the effect")

    monkeypatch.setattr(effect_graphs, "SEND_HOOKS", [die_once])
    world.rt.graph.start({}, thread_id="t1")
    poller = world.poller()
    assert poller.poll_once() == 1 and poller.stats.crashed_invocations == 1
    reset_runtime()  # the redelivery lands on another execution environment (worker id)
    before = TAKEOVERS.total
    world.drain()

    head = world.head("t1")
    assert head.status == "completed", head.error
    assert TAKEOVERS.total == before + 1
    received = (tmp_path / "received").read_text().splitlines()
    assert len(received) == 2 and len({line.split()[0] for line in received}) == 1
    assert head.values["receipt"] == f"charged:{received[0].split()[0][:8]}"
    assert world.queue_depth() == 0
