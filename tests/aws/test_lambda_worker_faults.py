"""Fault injection at every I/O point of the worker, each followed by redelivery.

Each case runs the real worker handler on real queue messages (moto), with one fault injected
through botocore's event hooks around a real AWS call (see `tests/aws/faults.py`): a crash
before or after the checkpoint write, an ambiguous write (it landed, the answer was lost), a
crash after the successors were sent, before the thread record is written, before the
notification, and before the event source mapping deletes the message (the acknowledgement).
The crashed message comes back (its visibility timeout is skipped, not waited for) and is
processed again. Then: no transition is lost (the thread finishes), no step is committed twice
(exactly one conditional checkpoint write landed per step), the side effect happened once, and
the final state and the chain's shape equal those of a fault-free run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backends.aws import dynamodb_store
from durable_graph.verification import verify_thread
from tests.aws.conftest import AwsWorld
from tests.aws.faults import (
    WRITE,
    CallLog,
    Fault,
    always,
    checkpoint_put,
    connection_dropped,
    crash,
    thread_put,
)

CHAIN = "tests.aws.graphs:chain_graph"
EMAIL = "examples.email_approval:graph"


def _effect_done(params: dict[str, Any]) -> bool:
    item = params.get("Item", {})
    return str(item.get("sk", {}).get("S", "")).startswith("rec#fx#") and '"done"' in str(
        item.get("body", {}).get("S", "")
    )


def shape(world: AwsWorld, thread_id: str) -> list[tuple[int, str, list[str], str]]:
    return [(c.step, c.source, c.nodes, c.status) for c in world.chain(thread_id)]


def run_chain(
    world: AwsWorld, effects: Path, monkeypatch: pytest.MonkeyPatch, fault: Fault | None, on: str
) -> CallLog:
    monkeypatch.setenv("DG_EFFECTS", str(effects))
    rt = world.rt
    log = CallLog()
    log.install(rt.clients.dynamodb)
    rt.graph.start({}, thread_id="chain-1")
    if fault is not None:
        fault.install(world.clients.sqs if on == "esm" else getattr(rt.clients, on))
    world.drain()
    return log


@dataclass(frozen=True)
class Case:
    """Where to strike: a botocore event, which calls, which one of them, on whose client."""

    event: str
    on: str  # "dynamodb" / "sqs" / "sns": the worker's clients; "esm": the poller's
    matches: Callable[[dict[str, Any]], bool] = always
    occurrence: int = 1
    error: Callable[[], BaseException] = crash
    fold: bool = True  # False: every checkpoint is put alone, its companions after it

    def fault(self) -> Fault:
        return Fault(self.event, self.matches, self.error, self.occurrence)


PUT = WRITE  # a checkpoint's write: a PutItem, or a transaction with its companions
CHAIN_FAULTS: dict[str, Case] = {
    **{
        f"crash before checkpoint write #{n}": Case(
            f"before-call.{PUT}", "dynamodb", checkpoint_put, n
        )
        for n in (1, 2, 3)
    },
    **{
        f"crash after checkpoint write #{n}": Case(
            f"after-call.{PUT}", "dynamodb", checkpoint_put, n
        )
        for n in (1, 2, 3)
    },
    **{
        f"ambiguous checkpoint write #{n}": Case(
            f"after-call.{PUT}", "dynamodb", checkpoint_put, n, connection_dropped
        )
        for n in (1, 2, 3)
    },
    **{
        f"crash after send #{n}": Case("after-call.sqs.SendMessageBatch", "sqs", occurrence=n)
        for n in (1, 2)
    },
    **{
        f"crash before ack #{n}": Case("before-call.sqs.DeleteMessageBatch", "esm", occurrence=n)
        for n in (1, 2, 3)
    },
    # Small rows carry the thread head in the checkpoint's own transaction; a large one is put
    # alone and its companions follow: a crash may fall between the two (`fold=False`).
    "crash before thread record": Case(f"before-call.{WRITE}", "dynamodb", thread_put),
    "crash between checkpoint and its thread record": Case(
        f"before-call.{WRITE}", "dynamodb", thread_put, fold=False
    ),
    "crash after checkpoint written alone #3": Case(
        f"after-call.{WRITE}", "dynamodb", checkpoint_put, 3, fold=False
    ),
    "crash after side effect recorded": Case(f"after-call.{PUT}", "dynamodb", _effect_done),
}


_BASELINE: dict[str, Any] = {}


@pytest.fixture
def chain_baseline(
    aws_factory: Callable[..., AwsWorld], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The fault-free run (deterministic, so computed once per session)."""
    if not _BASELINE:
        world = aws_factory(graph=CHAIN)
        run_chain(world, tmp_path / "baseline", monkeypatch, None, "")
        _BASELINE.update(values=world.head("chain-1").values, shape=shape(world, "chain-1"))
    return _BASELINE


@pytest.mark.parametrize("case", sorted(CHAIN_FAULTS))
def test_fault_then_redelivery_equals_fault_free_run(
    case: str,
    chain_baseline: dict[str, Any],
    aws_factory: Callable[..., AwsWorld],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the chain a → b (side effect) → c and a fault at one I/O point of the worker,
    when the crashed message is redelivered and the queue drained, then the thread completed
    with the fault-free state and chain, each step landed once and the effect happened once."""
    fault = CHAIN_FAULTS[case].fault()
    if not CHAIN_FAULTS[case].fold:
        monkeypatch.setattr(dynamodb_store, "FOLD_EXTRA_UNITS", 0)
    world = aws_factory(graph=CHAIN)
    effects = tmp_path / "faulty"
    log = run_chain(world, effects, monkeypatch, fault, CHAIN_FAULTS[case].on)

    assert fault.fired, "the fault point was never reached"
    head = world.head("chain-1")
    assert head.status == "completed"
    assert head.values == chain_baseline["values"]
    assert shape(world, "chain-1") == chain_baseline["shape"]
    assert log.landed(None, checkpoint_put) == len(world.chain("chain-1")) == 4
    assert (effects / "charges.log").read_text().count("\n") == 1
    assert world.queue_depth() == 0
    assert world.rt.backend.checkpoints.get_thread("chain-1").status == "completed"  # type: ignore[union-attr]
    assert verify_thread(world.rt.backend, "chain-1").ok


SUSPENSION_FAULTS: dict[str, Callable[[], Fault]] = {
    "crash after the suspending checkpoint write": lambda: Fault(
        f"after-call.{WRITE}", checkpoint_put
    ),
    "crash before the thread record": lambda: Fault(f"before-call.{WRITE}", thread_put),
    "crash before the notification": lambda: Fault("before-call.sns.Publish"),
    # A row too large for one transaction is put alone; its head, signature and link follow.
    "crash between a large suspending checkpoint and its companions": lambda: Fault(
        f"before-call.{WRITE}", thread_put
    ),
}


@pytest.mark.parametrize("case", sorted(SUSPENSION_FAULTS))
def test_suspension_survives_a_crash_and_still_notifies(
    case: str, aws_factory: Callable[..., AwsWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the email graph, when the worker crashes around the suspension at human_review,
    then after redelivery the thread is suspended once, the approval notification went out,
    the thread record says suspended, and approving it sends the email once."""
    if "large" in case:
        monkeypatch.setattr(dynamodb_store, "FOLD_EXTRA_UNITS", 0)
    world = aws_factory(graph=EMAIL)
    rt = world.rt
    log = CallLog()
    log.install(rt.clients.dynamodb)
    fault = SUSPENSION_FAULTS[case]()
    rt.graph.start({"user_prompt": "pay the supplier"}, thread_id="tx-1")
    fault.install(rt.clients.sns if "notification" in case else rt.clients.dynamodb)
    world.drain()

    assert fault.fired
    head = world.head("tx-1")
    assert (head.step, head.status, head.next[0].node) == (1, "suspended", "human_review")
    notes = world.notifications()
    assert notes and {n["thread_id"] for n in notes} == {"tx-1"}
    assert all(n["node"] == "human_review" for n in notes)
    assert rt.backend.checkpoints.get_thread("tx-1").status == "suspended"  # type: ignore[union-attr]
    assert rt.backend.checkpoints.get_record("tx-1", "sig#1") is not None  # the head is signed
    assert world.queue_depth() == 0

    rt.graph.resume("tx-1", values={"approved": True}, as_node="human_review", run=False)
    world.drain()
    assert world.head("tx-1").values["outcome"] == "sent"
    assert len(world.sent_emails()) == 1
    assert log.landed(None, checkpoint_put) == len(world.chain("tx-1")) == 4
