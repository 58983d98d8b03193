"""The `webhook_secret` custom resource (functions/webhook_secret) on moto: Create stores a
`whsec_` secret, Update and Delete change nothing, a failure is reported to CloudFormation, and
CloudFormation always hears back (a real HTTP server on 127.0.0.1 stands in for its URL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable_graph.api.webhooks import check_secret
from durable_graph.backends.aws.local_poller import LocalLambdaContext
from functions.webhook_secret.handler import handler
from tests.aws.conftest import AwsWorld
from tests.aws.resources import session

CONTEXT = cast(LambdaContext, LocalLambdaContext(function_name="webhook-secret"))


class ResponseCatcher:
    """An HTTP server that records the PUTs CloudFormation's pre-signed URL would receive."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                catcher.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/response?signature=x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cfn() -> Iterator[ResponseCatcher]:
    catcher = ResponseCatcher()
    yield catcher
    catcher.server.shutdown()


def event(kind: str, secret_id: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/DurableGraph/1",
        "RequestId": f"req-{kind}",
        "LogicalResourceId": "WebhookSecretValue",
        "ResourceType": "Custom::WebhookSecretValue",
        "ResourceProperties": {"SecretId": secret_id},
        **({"PhysicalResourceId": "WebhookSecretValue"} if kind != "Create" else {}),
    }


def test_create_stores_a_whsec_secret_and_later_events_keep_it(
    aws: AwsWorld, cfn: ResponseCatcher
) -> None:
    sm = session().client("secretsmanager")
    arn = sm.create_secret(Name="webhook", SecretString="A" * 64)["ARN"]  # the placeholder

    handler(event("Create", arn, cfn.url), CONTEXT)
    stored = sm.get_secret_value(SecretId=arn)["SecretString"]
    handler(event("Update", arn, cfn.url), CONTEXT)
    handler(event("Delete", arn, cfn.url), CONTEXT)

    assert check_secret(stored) == stored and stored.startswith("whsec_")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == stored
    assert [b["Status"] for b in cfn.bodies] == ["SUCCESS"] * 3
    assert {b["PhysicalResourceId"] for b in cfn.bodies} == {"WebhookSecretValue"}
    assert all(stored not in json.dumps(b) for b in cfn.bodies)


def test_a_failed_create_is_reported_to_cloudformation(aws: AwsWorld, cfn: ResponseCatcher) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"

    body = handler(event("Create", missing, cfn.url), CONTEXT)

    assert cfn.bodies == [body]
    assert body["Status"] == "FAILED" and "ResourceNotFoundException" in body["Reason"]
