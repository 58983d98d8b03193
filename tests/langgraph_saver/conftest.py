"""The saver on each of our stores: the embedded SQLite store and DynamoDB + S3 (+ KMS for
signatures) on moto. Tests that take `saver_on` run once per store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.clock import ManualClock
from durable_graph.langgraph_saver import DurableGraphSaver
from tests.aws.backend_factory import moto_backend

StoreFactory = Callable[[Path], AbstractContextManager[Backend]]


@contextmanager
def _local(tmp_path: Path) -> Iterator[Backend]:
    backend = local_backend(tmp_path / "home")
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def _moto(tmp_path: Path) -> Iterator[Backend]:
    with moto_backend(tmp_path, ManualClock()) as backend:
        yield backend


STORES: dict[str, StoreFactory] = {"local": _local, "aws-moto": _moto}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with STORES[request.param](tmp_path) as backend:
        yield backend


@pytest.fixture
def saver(store: Backend) -> DurableGraphSaver:
    return DurableGraphSaver(store)
