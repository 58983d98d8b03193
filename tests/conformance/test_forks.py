"""The fork index (`durable_graph.forks`), on every backend: a fork is noted in its origin's
records before it commits, lineage is read from there (exact whatever the number of threads),
and a noted fork that never committed is not reported."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.errors import ThreadExists
from durable_graph.forks import FORKS_PER_RECORD, Fork, forks_of, note_fork, noted_forks
from durable_graph.timetravel import fork
from tests import graphs


def test_forks_made_through_the_engine_are_found_exactly(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread forked three times (once from a fork of it) among threads that are not
    its forks, when its lineage is read, then exactly its two direct forks come back with the
    steps they branched from; a refused fork (the id taken) is not even noted."""
    app = graphs.review_graph.with_backend(backend, clock=clock)
    for tid in ("origin", "bystander"):
        app.invoke({"amount": 5}, thread_id=tid)
    fork(app, "origin", 1, "f-1")
    fork(app, "origin", 2, "f-2")
    fork(app, "f-1", 0, "f-1-1")
    with pytest.raises(ThreadExists):
        fork(app, "origin", 1, "bystander")  # refused before anything is written
    found, noted = forks_of(backend.checkpoints, "origin")
    assert sorted(found, key=lambda f: f.thread_id) == [Fork("f-1", 1), Fork("f-2", 2)]
    assert noted == 2
    assert forks_of(backend.checkpoints, "f-1")[0] == [Fork("f-1-1", 0)]
    assert forks_of(backend.checkpoints, "bystander") == ([], 0)


def test_a_noted_fork_that_never_committed_is_not_reported(
    backend: Backend, clock: ManualClock
) -> None:
    """Given an entry noted for a fork whose commit never happened (the process died between
    the two writes), and one for a thread id that another origin's fork took, neither is
    reported; the real fork is."""
    app = graphs.review_graph.with_backend(backend, clock=clock)
    for tid in ("origin", "elsewhere"):
        app.invoke({"amount": 5}, thread_id=tid)
    note_fork(backend.checkpoints, "origin", 1, "died-before-commit")
    note_fork(backend.checkpoints, "origin", 1, "taken")
    fork(app, "elsewhere", 1, "taken")
    fork(app, "origin", 2, "real")
    assert forks_of(backend.checkpoints, "origin") == ([Fork("real", 2)], 3)


def test_the_index_spans_records_and_keeps_every_fork_once(backend: Backend) -> None:
    """Given more forks than one index record holds, each noted (one of them twice, as a
    retried fork would), then every fork is read back once, in the order noted."""
    total = FORKS_PER_RECORD + 7
    for i in range(total):
        note_fork(backend.checkpoints, "big", i % 5, f"big-{i}")
    note_fork(backend.checkpoints, "big", 3, "big-3")  # a retry: noted already
    noted = noted_forks(backend.checkpoints, "big")
    assert noted == [Fork(f"big-{i}", i % 5) for i in range(total)]
    assert noted_forks(backend.checkpoints, "nobody") == []
