"""Stores written before salted request digests (`request_digests.py`) read, verify and
replay as they are: `tests/fixtures/unsalted_parts_store` (written before salted parts: io
records without a salt) and `tests/fixtures/unsalted_requests_store` (written by the release
after it, commit 3dd8a29: io records salted, request digests still plain), both made by
`tests/fixtures/unsalted_parts_generate.py`. Their `request_sha256` has no prefix, which is
the marker `replay` matches a plain digest by; a step taken now is salted beside them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.canonical import digest
from durable_graph.clock import ManualClock
from durable_graph.errors import ThreadFailed
from durable_graph.timetravel import replay
from durable_graph.verification import verify_thread
from tests.ledger.unsalted_parts import graph

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
THREAD = "parts-v2"


@pytest.mark.parametrize(
    ("fixture", "salted_io"),
    [("unsalted_parts_store", False), ("unsalted_requests_store", True)],
)
def test_an_older_store_replays_its_recorded_calls_by_their_plain_digests(
    tmp_path: Path, fixture: str, salted_io: bool
) -> None:
    """Given a store written before salted request digests (its io records name each call by
    the plain sha256 of its request, with or without a salt for the response)
    Then it verifies as it is, and `replay` of the fan-out step feeds each task the answer
    recorded for its request and reproduces the step
    When the thread is resumed (it fails again, writing new steps)
    Then it still verifies."""
    home = tmp_path / "store"
    shutil.copytree(FIXTURES / fixture, home)
    backend = local_backend(home, clock=ManualClock())
    app = graph.with_backend(backend, clock=ManualClock())
    step, calls = next((row.step, row.io) for row in backend.checkpoints.ledger(THREAD) if row.io)
    assert len(calls) == 2 and all((io.s is not None) == salted_io for io in calls)
    for io, request in zip(sorted(calls, key=lambda io: io.task_id), "ab", strict=True):
        assert io.request_sha256 == digest(request), "plain: no marker"
    report = verify_thread(backend, THREAD)
    assert report.ok, report.reason

    replayed = replay(app, THREAD, step)

    assert replayed.verdict == "reproduced", replayed.reason
    assert [(t.recorded_inputs, t.used_inputs) for t in replayed.tasks] == [(1, 1), (1, 1)]
    with pytest.raises(ThreadFailed):
        app.resume(THREAD)
    report = verify_thread(backend, THREAD)
    assert report.ok, report.reason
    backend.close()
