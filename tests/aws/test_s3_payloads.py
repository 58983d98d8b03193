"""The S3 payload store beyond the conformance suite: key layout, one conditional PUT per put
(an existing payload answers 412 and counts as stored), digest checks, refs to uploads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from durable_graph.backends.aws.factory import AwsClients
from durable_graph.backends.aws.s3_payloads import (
    STAMP,
    S3PayloadStore,
    object_uri,
    parse_object_uri,
)
from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted
from tests.aws.resources import Resources, clients, create_resources


@pytest.fixture
def s3() -> Iterator[tuple[S3PayloadStore, AwsClients, Resources, list[tuple[str, int]]]]:
    with mock_aws():
        aws = clients()
        resources = create_resources(aws)
        answers: list[tuple[str, int]] = []

        def record(http_response: Any, model: Any, **_: Any) -> None:
            answers.append((model.name, int(http_response.status_code)))

        aws.s3.meta.events.register("after-call.s3", record)
        yield S3PayloadStore(aws.s3, resources.settings.bucket), aws, resources, answers


def test_a_put_is_one_conditional_request_and_a_repeated_one_stamps_the_object_again(
    s3: tuple[S3PayloadStore, AwsClients, Resources, list[tuple[str, int]]],
) -> None:
    """A new object costs one PutObject; one already there answers 412 and is stamped again
    (a CopyObject onto itself with the put's time: what erasure's conditional delete reads,
    `ports.payload_store.StampedPayloads`), its bytes and content type kept."""
    store, aws, resources, answers = s3
    data = b"payload bytes " * 100
    digest = hashlib.sha256(data).hexdigest()
    key = f"sha256/{digest[:2]}/{digest}"
    first = store.put(data, "text/plain")
    assert answers == [("PutObject", 200)]
    stamped = aws.s3.head_object(Bucket=resources.settings.bucket, Key=key)["Metadata"]
    answers.clear()
    second = store.put(data, "text/plain")
    assert answers == [("PutObject", 412), ("CopyObject", 200)]
    assert first == second
    assert first.uri == f"s3://{resources.settings.bucket}/{key}"
    head = aws.s3.head_object(Bucket=resources.settings.bucket, Key=key)
    assert head["ContentType"] == "text/plain"
    assert float(head["Metadata"][STAMP]) >= float(stamped[STAMP])
    assert store.get(first) == data


def test_altered_bytes_are_reported_not_returned(
    s3: tuple[S3PayloadStore, AwsClients, Resources, list[tuple[str, int]]],
) -> None:
    store, aws, resources, _ = s3
    ref = store.put(b"original")
    key = store.key_for(ref.sha256)
    aws.s3.put_object(Bucket=resources.settings.bucket, Key=key, Body=b"forged")
    with pytest.raises(PayloadCorrupted, match="does not match its digest"):
        store.get(ref)


def test_refs_to_uploads_are_pinned_to_their_version_and_digest(
    s3: tuple[S3PayloadStore, AwsClients, Resources, list[tuple[str, int]]],
) -> None:
    """Given an uploaded object later overwritten, then a ref made for the first version still
    reads the first version's bytes, and a ref whose digest does not match is refused."""
    store, aws, resources, _ = s3
    bucket, key = resources.uploads_bucket, "in/report (1).json"
    v1 = aws.s3.put_object(Bucket=bucket, Key=key, Body=b'{"v": 1}')["VersionId"]
    ref = store.ref_for_object(bucket, key, v1)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=b'{"v": 2}')
    assert parse_object_uri(ref.uri) == (bucket, key, v1)
    assert store.get(ref) == b'{"v": 1}'
    wrong = PayloadRef(uri=object_uri(bucket, key), sha256=ref.sha256, size=ref.size)
    with pytest.raises(PayloadCorrupted):
        store.get(wrong)  # the latest version has other bytes
