"""The `api` Lambda: API Gateway proxy events → the durable-graph HTTP API resolver.

Thin by design: the decorator stack (logger, tracer, metrics), one cached factory that builds the
API at cold start, and `resolve`. Routes, auth, errors: `durable_graph.api`; what a deployment
whose configuration cannot work answers (503, logged once): `durable_graph.api.aws`.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.api.aws import ApiSettings, aws_api, aws_resolver
from durable_graph.backends.aws.factory import CLIENT_CONFIG, runtime

logger = Logger(service="durable-graph-api")
tracer = Tracer(service="durable-graph-api")
metrics = Metrics(namespace="DurableGraph", service="api")


@functools.cache
def resolver() -> APIGatewayRestResolver:
    """Built on the first request (cold start): settings validated, clients created once."""
    session = boto3.Session()
    return aws_resolver(
        lambda: aws_api(
            ApiSettings.from_env(),
            runtime().backend,
            secretsmanager=session.client("secretsmanager", config=CLIENT_CONFIG),
            ssm=session.client("ssm", config=CLIENT_CONFIG),
        )
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = resolver().resolve(event, context)
    metrics.add_metric(
        name=f"http_{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1
    )
    return response
