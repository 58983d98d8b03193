"""The `dlq` Lambda: the transition DLQ's consumer; every dead letter ends recorded on its thread.

Thin by design: decorator stack, pydantic-parsed records, one library call per record. Whether a
dead letter is ignored (its work was done), re-driven or fails its thread is decided in
`durable_graph.backends.aws.dead_letters`. A record that raises (a transient error) is reported
as a batch item failure and comes back; FIFO order within a group is kept as in the worker.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.backends.aws import dead_letters

logger = Logger(service="durable-graph-dlq")
tracer = Tracer(service="durable-graph-dlq")
metrics = Metrics(namespace="DurableGraph", service="dlq")
processor = SqsFifoPartialProcessor(model=SqsRecordModel, skip_group_on_error=True)
copy_config_to_registered_loggers(source_logger=logger, include={"durable_graph"})


@tracer.capture_method
def record_handler(record: SqsRecordModel) -> str:
    result = dead_letters.settler().settle(
        str(record.body),
        group_id=record.attributes.MessageGroupId,
        receive_count=int(record.attributes.ApproximateReceiveCount),
    )
    metrics.add_metric(name="dead_letters", unit=MetricUnit.Count, value=1)
    if result.outcome in ("redriven", "failed_thread"):  # found `running` with nothing done
        metrics.add_metric(name="stranded_threads", unit=MetricUnit.Count, value=1)
    if result.outcome == "redriven":
        metrics.add_metric(name="redriven", unit=MetricUnit.Count, value=1)
    return result.outcome


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    dead_letters.settler()  # cold start: settings validated, clients built, once
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
