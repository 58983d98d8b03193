"""The SNS topic that carries approval-link notifications to humans.

Publishing is the worker's job when a thread suspends for review; who listens (e-mail, chat
integration, a ticketing system) is a deployment choice, so the only built-in subscription is an
optional e-mail address from the `approval_email` context value.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

__all__ = ["Notifications"]


class Notifications(Construct):
    """Approval notifications.

    Attributes:
        approvals_topic: the topic the worker publishes approval requests to.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, approval_email: str | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.approvals_topic = sns.Topic(
            self,
            "Approvals",
            display_name="durable-graph approvals",
            # The AWS-managed SNS key: encrypted at rest without a key policy to maintain, and
            # publishers need no KMS permissions of their own.
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if approval_email:
            self.approvals_topic.add_subscription(subscriptions.EmailSubscription(approval_email))

    def grant_publish(self, function: lambda_.Function) -> None:
        """Publish approval notifications: `sns:Publish` on the topic and nothing else. The
        topic's key is AWS-managed, usable through SNS by the account's principals, so no KMS
        permission is granted (`Topic.grant_publish` would add one on `key/*` by alias under
        the recommended flag `@aws-cdk/aws-kms:applyImportedAliasPermissionsToPrincipal`)."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.approvals_topic.topic_arn])
        )
