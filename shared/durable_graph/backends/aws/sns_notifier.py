"""Notifier on SNS: "thread X is waiting for approval at node Y", published to one topic.

The message is the notification as JSON (thread id, step, node, summary, the interrupt payload
or a summary of it when large, and approval links once the API provides them). `kind` and
`thread_id` are message attributes too, so subscribers can filter without parsing the body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws.errors import translate
from durable_graph.ports.notifier import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

# SNS takes 256 KB; an approval request needs far less. Larger payloads are summarised.
MAX_PAYLOAD_CHARS = 16 * 1024
SUBJECT_LIMIT = 100


class SnsNotifier:
    """Implements `durable_graph.ports.notifier.Notifier`."""

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def message_for(self, notification: Notification) -> str:
        document = notification.model_dump(mode="json")
        payload = json.dumps(document["payload"], sort_keys=True, ensure_ascii=False)
        if len(payload) > MAX_PAYLOAD_CHARS:
            document["payload"] = {
                "truncated": True,
                "chars": len(payload),
                "preview": payload[:MAX_PAYLOAD_CHARS],
            }
        return json.dumps(document, sort_keys=True, ensure_ascii=False)

    def notify(self, notification: Notification) -> None:
        subject = f"durable-graph: {notification.kind} {notification.thread_id}"
        subject = "".join(c if c.isprintable() and c.isascii() else "?" for c in subject)
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=subject[:SUBJECT_LIMIT],
                Message=self.message_for(notification),
                MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": notification.kind},
                    "thread_id": {"DataType": "String", "StringValue": notification.thread_id},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "Publish notification") from exc


class NullNotifier:
    """For deployments without a topic: notifications are only logged by the engine."""

    def notify(self, notification: Notification) -> None:
        return None
