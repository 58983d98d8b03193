"""The `worker` Lambda: SQS FIFO batch → one graph task per message, partial batch failures.

Thin by design: decorator stack, pydantic-parsed records, one library call per record. What a
failure means (retry, fail the thread, park in the DLQ) is decided in
`durable_graph.backends.aws.lambda_worker`. `SqsFifoPartialProcessor(skip_group_on_error=True)`
is the FIFO flavour of powertools' `BatchProcessor`: when a record fails, the later records of
the same message group are reported failed too (order within a thread is kept), while other
groups in the batch carry on.
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

from durable_graph.backends.aws import lambda_worker
from durable_graph.effects import TAKEOVERS

logger = Logger(service="durable-graph-worker")
tracer = Tracer(service="durable-graph-worker")
metrics = Metrics(namespace="DurableGraph", service="worker")
processor = SqsFifoPartialProcessor(model=SqsRecordModel, skip_group_on_error=True)
# The library logs through `logging`; give those loggers powertools' JSON format and keys.
copy_config_to_registered_loggers(source_logger=logger, include={"durable_graph"})


@tracer.capture_method
def record_handler(record: SqsRecordModel) -> str:
    result = lambda_worker.worker().process(
        str(record.body),
        receipt=record.receiptHandle,
        receive_count=int(record.attributes.ApproximateReceiveCount),
        bind=logger.append_keys,
        group_id=record.attributes.MessageGroupId,
    )
    metrics.add_metric(name=f"transition_{result.kind}", unit=MetricUnit.Count, value=1)
    takeovers = TAKEOVERS.take_unreported()  # ctx.step claims a crashed delivery left behind
    if takeovers:
        metrics.add_metric(name="effect_takeovers", unit=MetricUnit.Count, value=takeovers)
    return result.kind


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    lambda_worker.worker()  # cold start: settings validated, clients built, once
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
