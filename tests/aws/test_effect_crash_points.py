"""A crash at each point around a `ctx.step` effect on the AWS path, and how often it ran.

Why the effect's result is a write of its own, not part of the step's commit
(`durable_graph.effects`, "Why the result is not folded into the commit"): from the moment `fn`
returns until its result is durable, a crash or an expired lease makes the next delivery run
`fn` again. Today that window is one PutItem; folding the result into the commit would stretch
it over the rest of the node, the head's signature (a KMS request) and the commit. These cases
pin each point down on the real worker handler and real queue messages (moto): the effect runs
twice only when the process dies between `fn`'s return and its result's write (with one
idempotency key, for the receiver to drop the second); anywhere after that, including while the
completing step's head is signed, it runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError

from durable_graph.effects import TAKEOVERS
from durable_graph.verification import verify_thread
from tests.aws.conftest import AwsWorld
from tests.aws.faults import WRITE, CallLog, Fault, checkpoint_put, crash

CHAIN = "tests.aws.graphs:chain_graph"
EMAIL = "examples.email_approval:graph"


def _effect(status: str) -> Callable[[dict[str, Any]], bool]:
    """The PutItem of the effect record (`rec#fx#...`) in this status (claim or result)."""

    def matches(params: dict[str, Any]) -> bool:
        item = params.get("Item", {})
        key = str(item.get("sk", {}).get("S", ""))
        return key.startswith("rec#fx#") and f'"status":"{status}"' in str(
            item.get("body", {}).get("S", "")
        )

    return matches


def _dropped() -> BaseException:
    return ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


# point -> (fault, how many times the receiver got the effect, takeovers of the claim)
POINTS: dict[str, tuple[Callable[[], Fault], int, int]] = {
    "before the claim is written": (
        lambda: Fault("before-call.dynamodb.PutItem", _effect("started")),
        1,
        0,
    ),
    "after the claim landed, before the effect": (
        lambda: Fault("after-call.dynamodb.PutItem", _effect("started")),
        1,
        1,
    ),
    # The one window: the effect happened, nothing durable says so. The next delivery takes
    # the claim over and runs it again, with the same idempotency key.
    "after the effect, before its result is written": (
        lambda: Fault("before-call.dynamodb.PutItem", _effect("done")),
        2,
        1,
    ),
    "the result's write landed but its answer was lost": (
        lambda: Fault("after-call.dynamodb.PutItem", _effect("done"), _dropped),
        1,
        0,
    ),
    "after the result is written": (
        lambda: Fault("after-call.dynamodb.PutItem", _effect("done")),
        1,
        0,
    ),
    "before the step's commit": (
        lambda: Fault(f"before-call.{WRITE}", checkpoint_put, occurrence=2),
        1,
        0,
    ),
    "after the step's commit": (
        lambda: Fault(f"after-call.{WRITE}", checkpoint_put, occurrence=2),
        1,
        0,
    ),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_crash_around_an_effect_runs_it_again_only_before_its_result_is_written(
    point: str,
    aws_factory: Callable[..., AwsWorld],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the chain a → b (a `ctx.step` charge) → c on the worker handler
    When the worker crashes at one point around b's effect and the message is redelivered
    Then the thread completes with one commit per step and a chain that verifies, and the
    receiver got the charge the number of times that point allows, always with one key."""
    fault_of, runs, takeovers = POINTS[point]
    monkeypatch.setenv("DG_EFFECTS", str(tmp_path / "effects"))
    world = aws_factory(graph=CHAIN)
    rt = world.rt
    log = CallLog()
    log.install(rt.clients.dynamodb)
    rt.graph.start({}, thread_id="fx-1")
    fault = fault_of()
    fault.install(rt.clients.dynamodb)
    before = TAKEOVERS.total
    world.drain()
    assert fault.fired, "the crash point was never reached"

    head = world.head("fx-1")
    assert (head.status, head.values["log"]) == ("completed", ["a", "b", "c"])
    keys = (tmp_path / "effects" / "charges.log").read_text().splitlines()
    assert len(keys) == runs and len(set(keys)) == 1
    assert head.values["receipt"] == f"charged:{keys[0][:8]}"
    assert TAKEOVERS.total - before == takeovers
    assert log.landed(None, checkpoint_put) == len(world.chain("fx-1")) == 4
    assert world.queue_depth() == 0
    assert verify_thread(world.rt.backend, "fx-1").ok


def test_a_crash_while_the_completing_head_is_signed_does_not_send_the_email_again(
    aws_factory: Callable[..., AwsWorld],
) -> None:
    """Given the seed approval flow, approved
    When the worker dies in the KMS Sign of the completing step's head (after the email was
    sent and its result written, before the commit) and the message is redelivered
    Then one email went out and the thread completed: the point a result folded into the
    commit would have lost, sending the email a second time."""
    world = aws_factory(graph=EMAIL)
    rt = world.rt
    rt.graph.start({"user_prompt": "pay the supplier"}, thread_id="mail-1")
    world.drain()
    rt.graph.resume("mail-1", values={"approved": True}, as_node="human_review", run=False)
    fault = Fault("before-call.kms.Sign", error=crash)
    fault.install(rt.clients.kms)
    world.drain()

    assert fault.fired
    head = world.head("mail-1")
    assert (head.status, head.values["outcome"]) == ("completed", "sent")
    assert len(world.sent_emails()) == 1
    assert verify_thread(world.rt.backend, "mail-1").ok
