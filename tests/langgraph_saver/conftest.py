"""The saver on each of our durable stores, from the one list the conformance suite uses
(`tests/conformance/conftest.py`): the embedded SQLite store, DynamoDB + S3 (+ KMS) on moto, and
PostgreSQL on the session's real server. Tests that take `store` or `saver` run once per store.
(The in-process memory store is left out: it has no ledger key, so nothing to sign with.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.langgraph_saver import DurableGraphSaver
from tests.conformance.conftest import BACKEND_FACTORIES

STORES: dict[str, Callable[[Path, ManualClock], AbstractContextManager[Backend]]] = {
    name: factory for name, factory in BACKEND_FACTORIES.items() if name != "memory"
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with STORES[request.param](tmp_path, ManualClock()) as backend:
        yield backend


@pytest.fixture
def saver(store: Backend) -> DurableGraphSaver:
    return DurableGraphSaver(store)
