"""The AWS backend on moto, as a factory of the conformance suite (`tests/conformance`).

Two adjustments make moto behave like the services the suite specifies, and neither touches our
code: every client call holds one lock (moto's in-memory services are not thread-safe, while the
real services apply each request atomically — the inline worker calls them from a thread pool),
and moto's SQS clock follows the test's `ManualClock` (so "the visibility timeout passes" is
`clock.advance(...)`, as on the other backends, instead of a real wait).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from unittest.mock import patch

from moto import mock_aws
from moto.sqs import models as sqs_models

from durable_graph.backend import Backend
from durable_graph.backends.aws.factory import AwsClients, aws_backend
from durable_graph.clock import ManualClock
from tests.aws.resources import clients, create_resources

T = TypeVar("T")


class _Serialized:
    """A boto3 client whose calls run one at a time (see the module docstring)."""

    def __init__(self, client: Any, lock: threading.RLock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "meta" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def serialized(aws: AwsClients) -> AwsClients:
    lock = threading.RLock()

    def wrap(client: T) -> T:
        return cast(T, _Serialized(client, lock))

    return AwsClients(
        dynamodb=wrap(aws.dynamodb),
        s3=wrap(aws.s3),
        sqs=wrap(aws.sqs),
        sns=wrap(aws.sns),
        kms=wrap(aws.kms),
        ses=wrap(aws.ses),
    )


@contextmanager
def sqs_time_follows(clock: ManualClock) -> Iterator[None]:
    """Moto's SQS sees real time plus however far `clock` was advanced."""
    start = clock.now()
    real: Callable[..., float] = sqs_models.unix_time  # type: ignore[attr-defined]

    def unix_time(dt: Any = None) -> float:
        skipped = (clock.now() - start).total_seconds()
        return real(dt) + (skipped if dt is None else 0.0)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    with (
        patch.object(sqs_models, "unix_time", unix_time),
        patch.object(sqs_models, "unix_time_millis", unix_time_millis),
    ):
        yield


@contextmanager
def moto_backend(_: Path, clock: ManualClock) -> Iterator[Backend]:
    with mock_aws(), sqs_time_follows(clock):
        aws = serialized(clients())
        resources = create_resources(aws)
        yield aws_backend(resources.settings, aws, clock=clock)
