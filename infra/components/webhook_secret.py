"""The custom resource that stores a Standard Webhooks secret (`whsec_<base64>`) at deploy time.

Secrets Manager generates passwords, not `whsec_` secrets; `Signing` creates the secret (with a
generated placeholder), and this construct's function replaces it with one made by
`durable_graph.api.keys.new_webhook_secret` when the stack is created (or when the resource is
added to an older stack). Later deploys leave it alone. The function may only put a value into
that one secret. The `api` function depends on this resource, so it never serves with the
placeholder (which the API would refuse with 503: not in `whsec_` form).
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.functions import ARCHITECTURE, RUNTIME
from infra.components.nag import acknowledge

__all__ = ["HANDLER", "WebhookSecretValue"]

HANDLER = "webhook_secret.handler.handler"


class WebhookSecretValue(Construct):
    """Attributes:
    function: the custom resource's function.
    resource: the custom resource (depend on it to see the `whsec_` value).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        secret: secretsmanager.ISecret,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="durable-graph webhook secret setup (custom resource)",
        )
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH)
        log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:PutSecretValue"], resources=[secret.secret_arn]
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="durable-graph: stores a whsec_ webhook secret at deploy time",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=code,
            layers=[layer],
            role=role,
            timeout=Duration.seconds(60),
            memory_size=256,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        acknowledge(
            self.function,
            "L1",
            "Python 3.12 is the runtime infra/package.py builds the layer's binary wheels for; "
            "moving to a newer one is a deliberate change of both.",
        )
        self.resource = CustomResource(
            self,
            "Value",
            service_token=self.function.function_arn,
            resource_type="Custom::WebhookSecretValue",
            properties={"SecretId": secret.secret_arn},
        )
