"""The `s3_trigger` Lambda: S3 ObjectCreated → start one run per uploaded object version.

Invoked asynchronously by S3. A duplicate event starts nothing new and the `s3:TestEvent` is
acknowledged; if an object could not be started the handler raises after trying every record,
so Lambda retries the event and finally sends it to the function's failure queue
(`durable_graph.backends.aws.s3_start`).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.backends.aws.factory import runtime
from durable_graph.backends.aws.s3_start import UploadStarter

logger = Logger(service="durable-graph-s3-trigger")
tracer = Tracer(service="durable-graph-s3-trigger")
metrics = Metrics(namespace="DurableGraph", service="s3_trigger")


@functools.cache
def starter() -> UploadStarter:
    return UploadStarter(runtime())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = starter().handle(event)
    for result in results:
        metrics.add_metric(name=f"upload_{result.kind}", unit=MetricUnit.Count, value=1)
        logger.info("upload", extra={"kind": result.kind, "thread_id": result.thread_id})
    return {"results": [{"kind": r.kind, "thread_id": r.thread_id, "key": r.key} for r in results]}
