"""Starting or forking onto a thread id that is taken is refused, on every backend, and leaves
the store exactly as it was: no row, record or payload object (an offloaded chunk of the
refused step 0 included) is left behind."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.errors import ThreadExists
from durable_graph.timetravel import fork
from tests.conformance.store_contents import contents
from tests.conformance.test_erasure import EMAIL, run_case

BIG = "another dossier: " + "private " * 2_000  # over every backend's offload threshold


def test_a_start_onto_a_taken_id_is_refused_and_writes_nothing(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a completed thread t1
    When t1 is started again with a value big enough to be stored as a payload chunk
    Then ThreadExists names it, and every row and object of the store is as it was."""
    app = run_case(backend, clock, "t1")
    before = contents(backend)

    with pytest.raises(ThreadExists) as refused:
        app.start({"email": EMAIL, "dossier": BIG}, thread_id="t1")

    assert refused.value.thread_id == "t1"
    assert contents(backend) == before


def test_a_fork_onto_a_taken_id_is_refused_and_writes_nothing(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two completed threads t1 and t2
    When t1's step 1 is forked onto t2, with a big value of its own
    Then ThreadExists names t2, and every row and object of the store is as it was (no chunk
    of the refused step 0, no entry in t1's fork index)."""
    app = run_case(backend, clock, "t1")
    run_case(backend, clock, "t2")
    before = contents(backend)

    with pytest.raises(ThreadExists) as refused:
        fork(app, "t1", 1, "t2", values={"dossier": BIG})

    assert refused.value.thread_id == "t2"
    assert contents(backend) == before
