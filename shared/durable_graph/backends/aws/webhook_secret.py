"""Store a Standard Webhooks secret in the stack's webhook secret at deploy time.

Secrets Manager can generate a random password but not a `whsec_<base64>` secret, so the stack
creates the secret and a CloudFormation custom resource (the `webhook_secret` function) puts a
secret made by `keys.new_webhook_secret` into it when the resource is created. Updates and
deletes change nothing: the secret is rotated by an operator together with the webhook senders,
never by a redeploy. Whatever happens, CloudFormation is told (it would otherwise wait an hour);
the secret value never appears in the response or the logs.

Example:
    >>> event = {"RequestType": "Delete", "ResponseURL": "https://example.com/r",
    ...          "StackId": "s", "RequestId": "r", "LogicalResourceId": "L"}
    >>> response_body(event, "SUCCESS", "nothing to do")["PhysicalResourceId"]
    'L'
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from durable_graph.api.keys import new_webhook_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger("durable_graph.aws.webhook_secret")

__all__ = ["handle", "response_body"]

Status = Literal["SUCCESS", "FAILED"]


def response_body(event: Mapping[str, Any], status: Status, reason: str) -> dict[str, Any]:
    """The custom resource response CloudFormation expects (no data: the secret stays put)."""
    return {
        "Status": status,
        "Reason": reason[:500],
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }


def handle(event: Mapping[str, Any], client: SecretsManagerClient) -> dict[str, Any]:
    """Act on one custom resource event and report to its `ResponseURL`; returns the report."""
    status: Status = "SUCCESS"
    reason = f"{event.get('RequestType')}: nothing to change"
    try:
        if event["RequestType"] == "Create":
            secret_id = str(event["ResourceProperties"]["SecretId"])
            client.put_secret_value(SecretId=secret_id, SecretString=new_webhook_secret())
            reason = f"stored a whsec_ secret in {secret_id}"
    except Exception as exc:  # CloudFormation must hear back whatever went wrong
        log.exception("could not store the webhook secret")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
    body = response_body(event, status, reason)
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": ""},  # the pre-signed URL was signed without a content type
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # the https URL CFN gave
        answer.read()
    return body
