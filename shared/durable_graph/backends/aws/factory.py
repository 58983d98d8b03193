"""Build the AWS backend and the graph runtime, lazily, once per process.

No boto3 client exists at import time: `runtime()` builds everything on its first call (the
Lambda cold start, when the settings are validated) and caches it for the warm invocations that
follow; `reset()` drops the cache (tests that change the environment call it).

Why values above 8 KB go to S3 (`AwsSettings.offload_bytes`, `Backend.offload_threshold`):
DynamoDB on-demand bills a write per started 1 KB ($0.625 per million write units), so a value
of n KB costs about n * $0.625 per million steps *every time a checkpoint carries it*. Moving it
to S3 costs a PUT ($5 per million) when it changes plus a GET ($0.40 per million) when a worker
reads it: a flat ≈ $5.40 per million. The two meet near 8-9 KB, so 8 KB is the default: below
it, inlining is cheaper and saves two requests; above it, S3 is cheaper and keeps the item small
(and far from the 400 KB item limit, and from the 64 KB SQS billing chunk of a message that
carries the state). Raise it for states whose large values change at every step and are read
rarely; lower it for large values that stay unchanged over many steps (each step re-writes an
inline value, but reuses an offloaded one by digest).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

from durable_graph.backend import Backend
from durable_graph.backends.aws import names
from durable_graph.backends.aws.dynamodb_store import DynamoDBCheckpointStore
from durable_graph.backends.aws.kms_keys import KmsKeyWrapper
from durable_graph.backends.aws.kms_signer import KmsSigner
from durable_graph.backends.aws.leftovers import DynamoDBLeftovers
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.backends.aws.ses_mailer import SesMailer
from durable_graph.backends.aws.settings import AwsSettings
from durable_graph.backends.aws.sns_notifier import NullNotifier, SnsNotifier
from durable_graph.backends.aws.sqs_queue import SqsTransitionQueue
from durable_graph.backends.records import open_records
from durable_graph.clock import Clock
from durable_graph.engine import Engine
from durable_graph.errors import InvalidInput
from durable_graph.keys import KeyWrapper
from durable_graph.loader import load_graph
from durable_graph.ports.notifier import Notifier
from durable_graph.ports.transition_queue import Delivery, TransitionMessage, TransitionQueue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from durable_graph.runtime import CompiledGraph

__all__ = [
    "CLIENT_CONFIG",
    "AwsClients",
    "AwsRuntime",
    "NoQueue",
    "StoreNames",
    "aws_backend",
    "build_runtime",
    "reset",
    "runtime",
]

# Standard retry mode retries throttling and 5xx answers with backoff. A retried conditional
# write whose first attempt had landed comes back as a lost condition carrying our own item:
# the engine treats it like any duplicate (re-sends the successors), so retries stay safe.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
    tcp_keepalive=True,
)


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    s3: S3Client
    sqs: SQSClient
    sns: SNSClient
    kms: Any = None  # only needed when chain heads are signed with a KMS key
    ses: SESClient | None = None  # only needed when nodes send mail (`AwsSettings.mail_from`)

    @classmethod
    def create(cls, session: boto3.Session | None = None) -> AwsClients:
        """Clients from `session` (default: the environment's credentials, region and
        `AWS_ENDPOINT_URL`, which points them at a local moto server in tests)."""
        session = session or default_session()
        return cls(
            dynamodb=session.client("dynamodb", config=CLIENT_CONFIG),
            s3=session.client("s3", config=CLIENT_CONFIG),
            sqs=session.client("sqs", config=CLIENT_CONFIG),
            sns=session.client("sns", config=CLIENT_CONFIG),
            kms=session.client("kms", config=CLIENT_CONFIG),
            ses=session.client("ses", config=CLIENT_CONFIG),
        )


def default_session() -> boto3.Session:
    """A session for the environment's AWS configuration, reused while it stays the same: a
    session caches the service models, so building clients from it again costs little."""
    keys = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE")
    return _session(tuple(os.environ.get(k) for k in keys), os.environ.get("AWS_ACCESS_KEY_ID"))


@functools.cache
def _session(config: tuple[str | None, ...], key_id: str | None) -> boto3.Session:
    return boto3.Session()


class StoreNames(Protocol):
    """Where a deployed store's parts are: what `aws_backend` needs of `AwsSettings` (the
    functions' environment) or of `locate.AwsStoreNames` (a store URI's stack outputs)."""

    @property
    def table_name(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def queue_url(self) -> str | None: ...
    @property
    def dlq_url(self) -> str | None: ...
    @property
    def topic_arn(self) -> str | None: ...
    @property
    def ledger_key_id(self) -> str | None: ...
    @property
    def data_key_id(self) -> str | None: ...
    @property
    def offload_bytes(self) -> int: ...
    @property
    def mail_from(self) -> str | None: ...


class NoQueue:
    """The queue of a store located without one (`aws://TABLE?bucket=...`): reading works,
    queueing work is refused with what to give instead, before anything is written."""

    def __init__(self, table: str) -> None:
        self._table = table

    def reason(self) -> str:
        return (
            f"the store of table {self._table!r} was opened without its transition queue: "
            "name the stack (aws://STACK) or add ?queue=URL to write to it"
        )

    def _refuse(self) -> InvalidInput:
        return InvalidInput(self.reason(), field="store")

    def send(self, messages: Sequence[TransitionMessage]) -> None:
        raise self._refuse()

    def receive(self, *args: Any, **kwargs: Any) -> list[Delivery]:
        raise self._refuse()

    def ack(self, delivery: Delivery) -> None:
        raise self._refuse()

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        raise self._refuse()

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        raise self._refuse()

    def depth(self) -> int:
        return 0


def aws_backend(
    settings: StoreNames,
    clients: AwsClients,
    *,
    kek: KeyWrapper | None = None,
    deletes_payloads: bool = True,
    clock: Clock | None = None,
) -> Backend:
    """The four AWS adapters bundled as a `Backend` with the AWS size limits; `kek` (e.g.
    `KmsKeyWrapper`) turns encryption at rest on (`durable_graph.keys`), as `data_key_id` does
    (a symmetric KMS key: envelope encryption). `deletes_payloads`: whether the caller's
    credentials may delete payload objects (a Lambda function's settings say): a function
    that may not leaves a lost append's chunks, and the snapshot segments its merges retired,
    in the table's leftovers for the sweeper (`durable_graph.leftovers`). `clock` stamps
    payload objects and leftovers (tests pass a manual one)."""
    payloads = S3PayloadStore(clients.s3, settings.bucket, clock=clock)
    if kek is None and settings.data_key_id and clients.kms is not None:
        kek = KmsKeyWrapper(clients.kms, settings.data_key_id)
    no_queue = None if settings.queue_url else NoQueue(settings.table_name)
    queue: TransitionQueue = no_queue or SqsTransitionQueue(
        clients.sqs,
        str(settings.queue_url),
        payloads=S3PayloadStore(
            clients.s3, settings.bucket, prefix=names.MESSAGE_PREFIX, clock=clock
        ),
        dlq_url=settings.dlq_url,
    )
    notifier: Notifier = (
        SnsNotifier(clients.sns, settings.topic_arn) if settings.topic_arn else NullNotifier()
    )
    leftovers = DynamoDBLeftovers(clients.dynamodb, settings.table_name, clock)
    records = open_records(
        DynamoDBCheckpointStore(clients.dynamodb, settings.table_name),
        payloads,
        kek,
        deletes_payloads=deletes_payloads,  # the merged-away segments of snapshots too
        leftovers=leftovers,
    )
    return Backend(
        checkpoints=records,
        payloads=records.payloads,
        queue=queue,
        read_only=no_queue.reason() if no_queue else None,
        notifier=notifier,
        signer=(
            KmsSigner(clients.kms, settings.ledger_key_id)
            if settings.ledger_key_id and clients.kms is not None
            else None
        ),
        mailer=(
            SesMailer(clients.ses, settings.mail_from)
            if settings.mail_from and clients.ses is not None
            else None
        ),
        offload_threshold=settings.offload_bytes,
        # DynamoDB items hold 400 KB; keep 50 KB for attribute names, keys and growth.
        max_record_bytes=350 * 1024,
        deletes_payloads=deletes_payloads,
        leftovers=leftovers,
    )


@dataclass(frozen=True)
class AwsRuntime:
    """Everything a function needs: settings, clients, backend and the graph bound to it."""

    settings: AwsSettings
    clients: AwsClients
    backend: Backend
    graph: CompiledGraph

    def engine(self) -> Engine:
        return self.graph.engine()

    def engine_for(self, name: str) -> Engine:
        """The engine of graph `name`: this deployment's graph, or another importable one
        (a thread started under another graph keeps running under it)."""
        if name == self.graph.name:
            return self.engine()
        return load_graph(name).with_backend(self.backend, clock=self.graph.clock).engine()


def build_runtime(
    settings: AwsSettings, clients: AwsClients | None = None, *, clock: Clock | None = None
) -> AwsRuntime:
    clients = clients or AwsClients.create()
    backend = aws_backend(settings, clients, deletes_payloads=settings.payload_deletes, clock=clock)
    graph = load_graph(settings.graph).with_backend(backend, clock=clock)
    return AwsRuntime(settings=settings, clients=clients, backend=backend, graph=graph)


@functools.cache
def runtime() -> AwsRuntime:
    """The process-wide runtime, built from the environment on first use (cold start)."""
    return build_runtime(AwsSettings.from_env())


def reset() -> None:
    """Forget the cached runtime (the next `runtime()` re-reads the environment)."""
    runtime.cache_clear()
