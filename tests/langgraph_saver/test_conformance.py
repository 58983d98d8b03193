"""LangGraph's own conformance suite (`langgraph-checkpoint-conformance`) against the saver on
each store: every required capability (58 tests) and the extended ones, `copy_thread`, `prune`
and `delete_for_runs`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport

from durable_graph.clock import ManualClock
from durable_graph.langgraph_saver import DurableGraphSaver
from tests.langgraph_saver.conftest import STORES

REQUIRED = {"put": 17, "put_writes": 10, "get_tuple": 10, "list": 16, "delete_thread": 5}


def run_suite(store: str, tmp_path: Path) -> CapabilityReport:
    runs = iter(range(1000))

    @checkpointer_test(name=f"DurableGraphSaver[{store}]")
    async def factory() -> AsyncIterator[DurableGraphSaver]:
        # A fresh, empty store for each capability, as the suite expects.
        with STORES[store](tmp_path / f"run{next(runs)}", ManualClock()) as backend:
            yield DurableGraphSaver(backend)

    return asyncio.run(validate(factory))


@pytest.mark.parametrize("store", sorted(STORES))
def test_the_saver_passes_langgraphs_conformance_suite(store: str, tmp_path: Path) -> None:
    # Given the saver on a store, When LangGraph's suite runs against it
    report = run_suite(store, tmp_path)

    # Then every required test and every extended one passes
    failures = {cap: r.failures for cap, r in report.results.items() if r.tests_failed}
    assert failures == {}
    assert report.passed_all_base()
    passed = {cap: report.results[cap].tests_passed for cap in REQUIRED}
    assert passed == REQUIRED, "the suite's required tests changed: update REQUIRED"
    extended = {
        cap: (report.results[cap].detected, report.results[cap].tests_passed)
        for cap in ("copy_thread", "prune", "delete_for_runs")
    }
    assert extended == {
        "copy_thread": (True, 8),
        "prune": (True, 8),
        "delete_for_runs": (True, 7),
    }
