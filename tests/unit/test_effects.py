"""Who may take a `ctx.step` claim over (`durable_graph.effects`), on the memory backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from durable_graph.backends.memory import memory_backend
from durable_graph.clock import ManualClock
from durable_graph.context import NodeContext, NodeServices
from durable_graph.effects import (
    EFFECT_LEASE_ENV,
    TaskDelivery,
    claim_seconds,
    configured_effect_lease,
)
from durable_graph.errors import EffectInProgress, InvalidInput


class Crash(BaseException):
    """A process dying inside the effect: nothing after it runs."""


def context(services: NodeServices, worker: str, receive_count: int) -> NodeContext:
    host = NodeServices(services.backend, services.clock, worker)
    return NodeContext(
        engine=host,
        thread_id="t",
        step_number=1,
        task_id="task-1",
        node="n",
        attempt=1,
        delivery=TaskDelivery(receive_count=receive_count, claim_seconds=30.0),
    )


@pytest.fixture
def services() -> NodeServices:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    return NodeServices(memory_backend(clock), clock, "w0")


def crash() -> Any:
    raise Crash


def test_a_later_delivery_takes_an_orphaned_claim_over_at_once(services: NodeServices) -> None:
    with pytest.raises(Crash):
        context(services, "w1", 1).step("fx", crash)
    assert context(services, "w2", 2).step("fx", lambda: "done") == "done"
    record = services.backend.checkpoints.get_record("t", "fx#task-1#fx")
    assert record is not None and record.value["status"] == "done"


def test_the_takeover_is_recorded_on_the_claim(services: NodeServices) -> None:
    with pytest.raises(Crash):
        context(services, "w1", 1).step("fx", crash)
    with pytest.raises(Crash):
        context(services, "w2", 2).step("fx", crash)
    claim = services.backend.checkpoints.get_record("t", "fx#task-1#fx")
    assert claim is not None
    assert claim.value["took_over"]["from_owner"] == "w1"
    assert claim.value["took_over"]["from_delivery"] == 1
    assert claim.value["took_over"]["why"] == "later_delivery"


def test_a_zombie_of_an_earlier_delivery_waits(services: NodeServices) -> None:
    """The older delivery is the zombie: it must not take the newer one's claim."""
    with pytest.raises(Crash):
        context(services, "w2", 2).step("fx", crash)
    with pytest.raises(EffectInProgress):
        context(services, "w1", 1).step("fx", lambda: "late")


def test_another_message_waits_for_the_lease_then_takes_over(services: NodeServices) -> None:
    """A re-sent message starts counting at 1 again: only the lease frees the claim."""
    with pytest.raises(Crash):
        context(services, "w1", 1).step("fx", crash)
    with pytest.raises(EffectInProgress):
        context(services, "w2", 1).step("fx", lambda: "early")
    assert isinstance(services.clock, ManualClock)
    services.clock.advance(31)
    assert context(services, "w2", 1).step("fx", lambda: "after") == "after"


def test_a_failed_effect_releases_its_claim(services: NodeServices) -> None:
    def fails() -> Any:
        raise ValueError("the API said no")

    with pytest.raises(ValueError):
        context(services, "w1", 1).step("fx", fails)
    # Another message, same receive count, lease not over: free anyway, fn ended.
    assert context(services, "w2", 1).step("fx", lambda: "ok") == "ok"


def test_a_claim_never_outlives_the_task_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    assert claim_seconds(60.0, None) == 60.0
    assert claim_seconds(60.0, 300.0) == 60.0
    assert claim_seconds(60.0, 5.0) == 5.0
    monkeypatch.setenv(EFFECT_LEASE_ENV, "7.5")
    assert configured_effect_lease() == 7.5
    monkeypatch.setenv(EFFECT_LEASE_ENV, "soon")
    with pytest.raises(InvalidInput):
        configured_effect_lease()
    with pytest.raises(InvalidInput):
        configured_effect_lease(0.0)
