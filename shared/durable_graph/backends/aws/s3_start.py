"""Start one run per object uploaded to S3 (the `s3_trigger` function's logic).

The run starts with a digest-pinned payload ref to the uploaded object (`upload` state field by
default): the object is read once to hash it, and never copied; nodes read it with
`ctx.load(state.upload)`, which re-checks the digest. The thread id is derived from bucket, key
and version (the ETag when the bucket is not versioned), so S3 delivering the same event twice —
it may — starts nothing new: the second start finds the thread and is ignored.

S3 URL-encodes keys in events (`my+report%281%29.json`); they are decoded with `unquote_plus`.
The `s3:TestEvent` S3 sends when a notification is configured is acknowledged and ignored, and so
are the payload store's own objects, should a notification ever cover that prefix.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.backends.aws import names
from durable_graph.backends.aws.errors import AwsRequestFailed
from durable_graph.backends.aws.factory import AwsRuntime
from durable_graph.backends.aws.s3_payloads import MISSING_CODES, S3PayloadStore
from durable_graph.checkpoint import Actor
from durable_graph.errors import DurableGraphError, ThreadExists, TransientError, UserError

log = logging.getLogger("durable_graph.aws.s3_start")

DEFAULT_INPUT_FIELD = "upload"


class _AwsEvent(BaseModel):
    # AWS adds fields to its events over time: ignore what we do not use, rather than fail.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class S3ObjectInfo(_AwsEvent):
    key: str
    size: int = 0
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")


class S3BucketInfo(_AwsEvent):
    name: str


class S3Entity(_AwsEvent):
    bucket: S3BucketInfo
    object: S3ObjectInfo


class S3EventRecord(_AwsEvent):
    event_name: str = Field(alias="eventName")
    s3: S3Entity


class S3Event(_AwsEvent):
    """An S3 event notification, or the `s3:TestEvent` (which has `Event` and no records)."""

    records: list[S3EventRecord] = Field(default_factory=list, alias="Records")
    event: str | None = Field(default=None, alias="Event")


@dataclass(frozen=True)
class StartResult:
    kind: Literal["started", "duplicate", "ignored", "rejected", "retry"]
    key: str = ""
    thread_id: str | None = None
    reason: str = ""


def thread_id_for(bucket: str, key: str, version: str) -> str:
    """Deterministic: the same object version always names the same thread."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return f"s3-{digest[:40]}"


class UploadStarter:
    """Starts `rt.graph` for uploaded objects.

    Args:
        rt: the AWS runtime.
        input_field: the state field that receives the upload's payload ref.
    """

    def __init__(self, rt: AwsRuntime, *, input_field: str = DEFAULT_INPUT_FIELD) -> None:
        payloads = rt.backend.payloads
        if not isinstance(payloads, S3PayloadStore):
            raise TypeError("UploadStarter needs the S3 payload store")
        self.rt = rt
        self.payloads = payloads
        self.input_field = input_field

    def handle(self, event: Mapping[str, Any]) -> list[StartResult]:
        """Start a run per created object; raises `StartsFailed` after trying them all if any
        could not be started (the event is then retried, the finished starts skipped)."""
        parsed = S3Event.model_validate(event)
        if parsed.event == "s3:TestEvent":
            log.info("s3:TestEvent acknowledged")
            return [StartResult("ignored", reason="s3:TestEvent")]
        results = [self.start_record(record) for record in parsed.records]
        failed = [r for r in results if r.kind in ("retry", "rejected")]
        if failed:
            raise StartsFailed(results)
        return results

    def start_record(self, record: S3EventRecord) -> StartResult:
        bucket = record.s3.bucket.name
        info = record.s3.object
        key = unquote_plus(info.key)
        if not record.event_name.startswith("ObjectCreated:"):
            return StartResult("ignored", key, reason=f"event {record.event_name}")
        if bucket == self.payloads.bucket and key.startswith(names.PAYLOAD_PREFIX):
            return StartResult("ignored", key, reason="a payload of the store itself")
        version = info.version_id if info.version_id not in (None, "", "null") else None
        return self.start(bucket, key, version, info.etag)

    def start(
        self, bucket: str, key: str, version_id: str | None, etag: str | None = None
    ) -> StartResult:
        """Start a run for one object version; a second call for it starts nothing."""
        thread_id = thread_id_for(bucket, key, version_id or f"etag:{etag or ''}")
        try:
            if self.rt.backend.checkpoints.head_checkpoint(thread_id) is not None:
                return StartResult("duplicate", key, thread_id)
            ref = self.payloads.ref_for_object(bucket, key, version_id)
            self.rt.graph.start(
                {self.input_field: ref.model_dump(mode="json")},
                thread_id=thread_id,
                actor=Actor(kind="system", id=f"s3://{bucket}"),
            )
        except ThreadExists:
            return StartResult("duplicate", key, thread_id)
        except AwsRequestFailed as exc:
            if exc.aws_code in MISSING_CODES:
                return StartResult("ignored", key, thread_id, reason="object no longer exists")
            log.error("cannot start a run for s3://%s/%s: %s", bucket, key, exc)
            return StartResult("retry", key, thread_id, reason=str(exc))
        except UserError as exc:
            log.error("upload s3://%s/%s rejected: %s", bucket, key, exc)
            return StartResult("rejected", key, thread_id, reason=str(exc))
        except (TransientError, DurableGraphError) as exc:
            log.warning("start of s3://%s/%s failed, to retry: %s", bucket, key, exc)
            return StartResult("retry", key, thread_id, reason=str(exc))
        log.info("run started for s3://%s/%s", bucket, key, extra={"thread_id": thread_id})
        return StartResult("started", key, thread_id)


class StartsFailed(Exception):
    """Raised after every record was tried, so Lambda retries the event (starts already made
    are found again and skipped) and finally parks it in the function's failure queue."""

    def __init__(self, results: list[StartResult]) -> None:
        failed = [r for r in results if r.kind in ("retry", "rejected")]
        super().__init__(
            f"{len(failed)} of {len(results)} uploads not started: "
            + "; ".join(f"{r.key}: {r.reason}" for r in failed)
        )
        self.results = results
