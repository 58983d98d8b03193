"""The one conformance suite: every test here runs against every backend.

Add a backend by appending a factory to `BACKEND_FACTORIES`: a context manager that yields a
`Backend` built on fresh, empty storage (and a `ManualClock` it uses for leases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.memory import memory_backend
from durable_graph.backends.postgres import postgres_backend
from durable_graph.clock import ManualClock
from tests.aws.backend_factory import moto_backend
from tests.conformance.test_encryption import FACTORIES as ENCRYPTED_FACTORIES
from tests.conformance.test_encryption import Encrypted
from tests.postgres.server import fresh_schema_uri

BackendFactory = Callable[[Path, ManualClock], AbstractContextManager[Backend]]


@contextmanager
def _memory(_: Path, clock: ManualClock) -> Iterator[Backend]:
    yield memory_backend(clock)


@contextmanager
def _local(tmp_path: Path, clock: ManualClock) -> Iterator[Backend]:
    backend = local_backend(tmp_path / "home", clock=clock)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def _postgres(tmp_path: Path, clock: ManualClock) -> Iterator[Backend]:
    """A fresh schema on the session's real PostgreSQL server (tests/postgres/server.py)."""
    with fresh_schema_uri() as uri:
        backend = postgres_backend(uri, clock=clock, mailer=OutboxMailer(tmp_path / "sent"))
        try:
            yield backend
        finally:
            backend.close()


BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "memory": _memory,
    "local": _local,
    "aws-moto": moto_backend,  # DynamoDB + S3 + SQS FIFO + SNS on moto
    "postgres": _postgres,  # a real server started by the tests
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Backend]:
    factory = BACKEND_FACTORIES[request.param]
    with factory(tmp_path, clock) as built:
        yield built


@pytest.fixture(params=sorted(ENCRYPTED_FACTORIES))
def encrypted(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Encrypted]:
    """A store with encryption at rest on, on every backend (`test_encryption.FACTORIES`), for
    every encryption test module."""
    with ENCRYPTED_FACTORIES[request.param](tmp_path, clock) as built:
        yield built
