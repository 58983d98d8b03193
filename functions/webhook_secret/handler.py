"""The `webhook_secret` Lambda: the custom resource that puts a `whsec_` secret into the stack's
webhook secret when it is created (`durable_graph.backends.aws.webhook_secret`)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.backends.aws.factory import CLIENT_CONFIG
from durable_graph.backends.aws.webhook_secret import handle

logger = Logger(service="durable-graph-webhook-secret")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, boto3.client("secretsmanager", config=CLIENT_CONFIG))
