"""The `sweeper` Lambda (scheduled): re-drive stalled threads, report the DLQ, delete the chunks
lost appends left behind; on its own schedule (`{"job": "retention"}`), the retention job
(`durable-graph retention run`); on another (`{"job": "gc"}`), the payload collector
(`durable-graph gc`).

All logic is in `durable_graph.backends.aws.sweeper`; this reports its numbers as metrics.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from durable_graph.backends.aws import names
from durable_graph.backends.aws.factory import runtime
from durable_graph.backends.aws.sweeper import collect_payloads, retention, sweep

logger = Logger(service="durable-graph-sweeper")
tracer = Tracer(service="durable-graph-sweeper")
metrics = Metrics(namespace="DurableGraph", service="sweeper")


class SweeperEvent(BaseModel):
    """A scheduled event: EventBridge's own (a sweep) or the retention rule's input."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job: Literal["sweep", "retention", "gc"] = "sweep"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = SweeperEvent.model_validate(event).job
    if job == names.GC_JOB:
        collected = collect_payloads(runtime(), time_left=lambda: _seconds_left(context))
        metrics.add_metric(name="payloads_deleted", unit=MetricUnit.Count, value=collected.deleted)
        metrics.add_metric(
            name="payload_bytes_deleted", unit=MetricUnit.Bytes, value=collected.deleted_bytes
        )
        return {"job": names.GC_JOB, **collected.as_json(digests=False)}
    if job == names.RETENTION_JOB:
        done = retention(runtime(), time_left=lambda: _seconds_left(context))
        metrics.add_metric(name="threads_erased", unit=MetricUnit.Count, value=len(done.erased))
        metrics.add_metric(
            name="retention_threads_checked", unit=MetricUnit.Count, value=done.totals.checked
        )
        return done.as_json()
    report = sweep(runtime())
    metrics.add_metric(name="threads_resent", unit=MetricUnit.Count, value=len(report.resent))
    metrics.add_metric(name="dlq_depth", unit=MetricUnit.Count, value=report.dlq_depth or 0)
    metrics.add_metric(
        name="leftover_chunks_deleted", unit=MetricUnit.Count, value=report.leftover_chunks_deleted
    )
    if report.dlq_threads:
        logger.error("threads with messages in the DLQ", extra={"threads": report.dlq_threads})
    return report.as_json()


def _seconds_left(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000
