"""S3-triggered runs (`functions/s3_trigger` + `backends/aws/s3_start`) and the document
pipeline they start, end to end on moto: real S3 notifications (moto's, read from a queue the
bucket notifies) and an AWS-shaped event from `events/`, the worker handler draining real SQS
messages, fan-out over the documents and fan-in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backends.aws.local_poller import LocalLambdaContext
from durable_graph.backends.aws.s3_payloads import parse_object_uri
from durable_graph.backends.aws.s3_start import thread_id_for
from durable_graph.verification import verify_thread
from examples.document_pipeline import sample_bundle
from functions.s3_trigger.handler import handler as s3_handler
from tests.aws.conftest import AwsWorld
from tests.aws.resources import stored_row

EVENTS = Path(__file__).parent / "events"
PIPELINE = "examples.document_pipeline:graph"


def notify_to_queue(world: AwsWorld) -> str:
    """Make the uploads bucket send its events to a queue (as S3 would to the function)."""
    sqs = world.clients.sqs
    url = sqs.create_queue(QueueName="upload-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    world.clients.s3.put_bucket_notification_configuration(
        Bucket=world.resources.uploads_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


def events_from(world: AwsWorld, url: str) -> list[dict[str, Any]]:
    raw = world.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in raw.get("Messages", [])]


def event_file(name: str, **values: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.fixture
def pipeline(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    return aws_factory(graph=PIPELINE)


def test_upload_runs_the_document_pipeline_with_text_kept_in_s3(pipeline: AwsWorld) -> None:
    """Given an upload of five documents, when S3's events reach the trigger and the worker
    drains the queue, then one run classified each document in its own task, aggregated once,
    and no checkpoint holds document text: only refs to S3, whose digests verify."""
    events = notify_to_queue(pipeline)
    key = "in/batch 2026-01 (final).json"
    pipeline.clients.s3.put_object(
        Bucket=pipeline.resources.uploads_bucket, Key=key, Body=sample_bundle()
    )
    results = [s3_handler(event, LocalLambdaContext()) for event in events_from(pipeline, events)]
    kinds = [r["kind"] for result in results for r in result["results"]]
    assert sorted(kinds) == ["ignored", "started"]  # the s3:TestEvent, then the upload
    started = [r for result in results for r in result["results"] if r["kind"] == "started"]
    thread_id = started[0]["thread_id"]

    pipeline.drain()
    head = pipeline.head(thread_id)
    assert head.status == "completed"
    assert head.values["totals"] == {"complaint": 1, "contract": 1, "invoice": 2, "other": 1}
    assert head.values["report"].splitlines()[0].startswith("cmp-003: [complaint]")
    nodes = [c.nodes for c in pipeline.chain(thread_id)]
    assert nodes == [[], ["extract"], ["classify"], ["aggregate"]]  # each node once per step

    upload = pipeline.rt.graph.get_state(thread_id).values["upload"]
    located = parse_object_uri(upload["uri"])
    assert located is not None and located[:2] == (pipeline.resources.uploads_bucket, key)
    items = pipeline.clients.dynamodb.scan(TableName=pipeline.resources.settings.table_name)
    bodies = " ".join(stored_row(i) for i in items["Items"] if "body" in i)
    texts = [d["text"] for d in json.loads(sample_bundle())["documents"]]
    assert not [t for t in texts if t[:200] in bodies]  # summaries yes, documents no
    stored = pipeline.clients.s3.list_objects_v2(Bucket=pipeline.resources.settings.bucket)
    assert len([o for o in stored["Contents"] if o["Key"].startswith("sha256/")]) >= 5
    assert verify_thread(pipeline.rt.backend, thread_id).ok


def test_repeated_and_test_events_start_nothing_new(pipeline: AwsWorld) -> None:
    """Given an upload event delivered twice, and S3's test event, then exactly one thread
    exists for the object version and the test event is acknowledged."""
    bucket = pipeline.resources.uploads_bucket
    put = pipeline.clients.s3.put_object(
        Bucket=bucket, Key="a+b/doc one.json", Body=sample_bundle(2)
    )
    event = event_file(
        "s3_object_created.json",
        BUCKET=bucket,
        KEY="a%2Bb/doc+one.json",  # how S3 encodes "a+b/doc one.json" in events
        VERSION=put["VersionId"],
        ETAG=put["ETag"].strip('"'),
    )
    first = s3_handler(event, LocalLambdaContext())["results"]
    second = s3_handler(event, LocalLambdaContext())["results"]
    test = s3_handler(event_file("s3_test_event.json", BUCKET=bucket), LocalLambdaContext())

    expected = thread_id_for(bucket, "a+b/doc one.json", put["VersionId"])
    assert [(r["kind"], r["thread_id"]) for r in first] == [("started", expected)]
    assert [(r["kind"], r["thread_id"]) for r in second] == [("duplicate", expected)]
    assert [r["kind"] for r in test["results"]] == ["ignored"]
    threads = pipeline.rt.backend.checkpoints.list_threads()
    assert [t.thread_id for t in threads] == [expected]
    ref = pipeline.rt.graph.get_state(expected).values["upload"]
    assert parse_object_uri(ref["uri"]) == (bucket, "a+b/doc one.json", put["VersionId"])


def test_a_new_version_of_the_same_key_starts_a_new_run(pipeline: AwsWorld) -> None:
    """Given two uploads to one key, then each version has its own run, each reading the
    bytes of its own version."""
    bucket = pipeline.resources.uploads_bucket
    threads = []
    for copies in (1, 3):
        body = sample_bundle(copies)
        put = pipeline.clients.s3.put_object(Bucket=bucket, Key="k.json", Body=body)
        event = event_file(
            "s3_object_created.json",
            BUCKET=bucket,
            KEY="k.json",
            VERSION=put["VersionId"],
            ETAG=put["ETag"].strip('"'),
        )
        threads.append(s3_handler(event, LocalLambdaContext())["results"][0]["thread_id"])
    pipeline.drain()
    words = [pipeline.head(t).values["results"][0]["words"] for t in threads]
    assert len(set(threads)) == 2
    assert words[1] == 3 * words[0]


def test_pipeline_runs_on_the_embedded_backend_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the same graph on the embedded backend, then the same bundle gives the same
    report (the example does not depend on AWS)."""
    monkeypatch.setenv("DURABLE_GRAPH_HOME", str(tmp_path / "home"))
    from durable_graph.backends.local import local_backend
    from examples.document_pipeline import graph, run_local

    local = graph.with_backend(local_backend(tmp_path / "home"))
    monkeypatch.setattr("examples.document_pipeline.graph", local)
    values = run_local(sample_bundle())
    assert values["totals"] == {"complaint": 1, "contract": 1, "invoice": 2, "other": 1}
    assert all("text" not in d for d in values["documents"])
