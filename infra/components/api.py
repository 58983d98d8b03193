"""The REST API in front of the `api` function.

Routes are declared one by one instead of a single `{proxy+}` resource because authorisation
differs per route:

* reading, auditing (verify, diff, export), forking, resuming and erasing a thread are
  operator actions, authorised by IAM (SigV4);
* `POST /threads` is called by third-party webhooks and `/approvals/{token}` by a human
  following a link; neither can sign with AWS credentials, so API Gateway lets them through and
  the function checks an HMAC signature (webhooks: over timestamp and body, with a replay window;
  approvals: a single-use, expiring token bound to thread and step).

An unknown path never reaches the function: API Gateway answers it with 403 itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.nag import acknowledge

__all__ = ["ROUTES", "STAGE_NAME", "Api", "Route"]

STAGE_NAME = "v1"

Auth = Literal["IAM", "NONE"]


@dataclass(frozen=True)
class Route:
    """One method on one resource path, and who may call it."""

    method: str
    path: str
    auth: Auth


ROUTES = (
    Route("POST", "/threads", "NONE"),
    Route("GET", "/threads/{id}", "IAM"),
    Route("GET", "/threads/{id}/history", "IAM"),
    Route("GET", "/threads/{id}/steps/{n}", "IAM"),
    Route("POST", "/threads/{id}/resume", "IAM"),
    Route("GET", "/threads/{id}/verify", "IAM"),
    Route("GET", "/threads/{id}/diff", "IAM"),
    Route("GET", "/threads/{id}/export", "IAM"),
    Route("POST", "/threads/{id}/fork", "IAM"),
    Route("POST", "/threads/{id}/erase", "IAM"),
    Route("GET", "/approvals/{token}", "NONE"),
    Route("POST", "/approvals/{token}", "NONE"),
)

_AUTHORIZATION = {"IAM": apigw.AuthorizationType.IAM, "NONE": apigw.AuthorizationType.NONE}


class Api(Construct):
    """API Gateway REST API with Lambda proxy integration.

    Attributes:
        rest_api: the API.
        base_url: the stage's invoke URL without a trailing slash, built from the API id and the
            stage name rather than from the stage resource, so that the functions may carry it in
            their environment without a dependency cycle (stage -> methods -> function).
    """

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="durable-graph: threads, time travel, resume and approvals",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logging needs the account-level CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                # Unauthenticated routes exist; cap what a flood of them can cost.
                throttling_rate_limit=100,
                throttling_burst_limit=200,
            ),
        )
        self.base_url = (
            f"https://{self.rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
            f"/{STAGE_NAME}"
        )
        # The function validates bodies with pydantic; this validator makes API Gateway reject
        # requests missing declared path parameters before they cost an invocation.
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(
            handler, proxy=True, allow_test_invoke=False, timeout=Duration.seconds(29)
        )
        for route in ROUTES:
            resource = self.rest_api.root.resource_for_path(route.path)
            method = resource.add_method(
                route.method,
                integration,
                authorization_type=_AUTHORIZATION[route.auth],
                request_validator=validator,
            )
            _acknowledge_auth(method, route)

        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            acknowledge(
                cloud_watch_role,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level API Gateway logging role; AWS maintains this policy for it.",
            )
        acknowledge(
            self.rest_api.deployment_stage,
            "APIG3",
            "No WAF: every route is authenticated (SigV4 or HMAC) and stage throttling caps "
            "floods; attach a web ACL per deployment if the threat model needs one.",
        )


def _acknowledge_auth(method: apigw.Method, route: Route) -> None:
    acknowledge(
        method,
        "COG4",
        "Callers are AWS principals (SigV4) or webhook senders and link holders (HMAC), not "
        "Cognito users.",
    )
    if route.auth == "NONE":
        acknowledge(
            method,
            "APIG4",
            f"{route.method} {route.path} is called by webhooks or by people following a signed "
            "link; the function authenticates it with an HMAC signature or single-use token.",
        )
