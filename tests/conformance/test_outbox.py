"""Notifications and relaxed writes, on every backend: a suspension's notification is written
with its step (an outbox row where the store is transactional), and a unit of work that rolls
back takes its notifications and relaxed writes with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.ports.notifier import Notification, NotificationLog
from examples.email_approval import graph as email_graph
from tests.conformance.conftest import BACKEND_FACTORIES

# The backends whose notifier keeps what it was given (SNS publishes and keeps nothing), and
# those whose `atomic` is a transaction (DynamoDB and memory write one by one). The first test
# holds these lists to what each backend is, so they cannot drift.
LOGGED = ("local", "memory", "postgres")
TRANSACTIONAL = ("local", "postgres")


def has_unit_of_work(backend: Backend) -> bool:
    """Whether the backend's `atomic` is a transaction (embedded, PostgreSQL), not a no-op."""
    return backend.atomic is not nullcontext


@pytest.fixture(params=LOGGED)
def logged(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Backend]:
    with BACKEND_FACTORIES[request.param](tmp_path, clock) as built:
        yield built


@pytest.fixture(params=TRANSACTIONAL)
def transactional(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Backend]:
    with BACKEND_FACTORIES[request.param](tmp_path, clock) as built:
        yield built


def log_of(backend: Backend) -> NotificationLog:
    notifier = backend.notifier
    assert isinstance(notifier, NotificationLog), type(notifier).__name__
    return notifier


def test_the_backends_that_keep_notifications_or_units_of_work_are_the_ones_listed(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """Every backend: its notifier keeps a log iff it is in LOGGED, and its `atomic` is a
    transaction iff it is in TRANSACTIONAL."""
    name = request.node.callspec.params["backend"]
    assert isinstance(backend.notifier, NotificationLog) == (name in LOGGED)
    assert has_unit_of_work(backend) == (name in TRANSACTIONAL)


def test_a_suspension_is_notified_once_with_its_step(logged: Backend, clock: ManualClock) -> None:
    """Given the email graph, when a thread suspends before human_review, then exactly one
    notification names the thread and the suspended step."""
    log = log_of(logged)
    app = email_graph.with_backend(logged, clock=clock)
    app.invoke({"user_prompt": "pay"}, thread_id="n-1")
    head = app.get_state("n-1")
    notes = log.read_all("n-1")
    assert [(n.kind, n.step, n.node) for n in notes] == [("suspended", head.step, "human_review")]
    assert log.read_all("someone-else") == []


def test_a_rolled_back_unit_of_work_leaves_no_notification_and_no_relaxed_write(
    transactional: Backend,
) -> None:
    """Given a transactional backend, when a unit of work that notified and wrote a relaxed
    record raises, then neither the notification nor the record exists; when one commits, both
    do."""
    backend = transactional
    log = log_of(backend)
    note = Notification(kind="suspended", thread_id="n-2", step=1, summary="s")
    with pytest.raises(RuntimeError), backend.atomic():
        backend.notifier.notify(note)
        with backend.relaxed():
            backend.checkpoints.put_record("n-2", "fx#t#a", {"a": 1}, expected_version=None)
        raise RuntimeError("the step failed to commit")
    assert log.read_all("n-2") == []
    assert backend.checkpoints.get_record("n-2", "fx#t#a") is None

    with backend.atomic():
        backend.notifier.notify(note)
        with backend.relaxed():
            backend.checkpoints.put_record("n-2", "fx#t#a", {"a": 1}, expected_version=None)
    assert log.read_all("n-2") == [note]
    assert backend.checkpoints.get_record("n-2", "fx#t#a") is not None


def test_a_relaxed_write_is_read_back_and_keeps_its_condition(backend: Backend) -> None:
    """A relaxed write is an ordinary conditional write, only not synced on its own."""
    with backend.relaxed():
        first = backend.checkpoints.put_record("n-3", "k", {"v": 1}, expected_version=None)
    assert backend.checkpoints.get_record("n-3", "k") == first
    with pytest.raises(Exception, match="k"), backend.relaxed():
        backend.checkpoints.put_record("n-3", "k", {"v": 2}, expected_version=None)
    stored = backend.checkpoints.get_record("n-3", "k")
    assert stored is not None and stored.value == {"v": 1}
