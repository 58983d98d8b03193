"""The ledger explorer's routes on API Gateway, guarded by an Amazon Cognito user pool.

People who may read the ledger are users of this pool (created by an administrator: no self
sign-up; TOTP MFA required). API Gateway's Cognito authoriser checks the ID token in
`Authorization` before the `api` function runs, and the function reads the verified claims
(`durable_graph.api.explorer_auth.CognitoAuth`). The stylesheet, scripts and sign-in page are
public; approval links are not explorer routes and keep their own single-use tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.components.nag import acknowledge

__all__ = ["EXPLORER_ROUTES", "ExplorerAuth", "ExplorerRoute"]


@dataclass(frozen=True)
class ExplorerRoute:
    method: str
    path: str
    signed_in: bool  # behind the Cognito authoriser


EXPLORER_ROUTES = (
    ExplorerRoute("GET", "/explorer", True),
    ExplorerRoute("GET", "/explorer/approvals", True),
    ExplorerRoute("GET", "/explorer/threads/{id}", True),
    ExplorerRoute("GET", "/explorer/threads/{id}/graph", True),
    ExplorerRoute("GET", "/explorer/threads/{id}/diff", True),
    ExplorerRoute("GET", "/explorer/threads/{id}/verify", True),
    ExplorerRoute("GET", "/explorer/threads/{id}/bundle", True),
    ExplorerRoute("POST", "/explorer/threads/{id}/approval", True),
    ExplorerRoute("GET", "/explorer/static/{name}", False),
    ExplorerRoute("GET", "/explorer/login", False),
)


class ExplorerAuth(Construct):
    """The user pool, its app client, the authoriser, and the explorer's methods.

    Attributes:
        user_pool: who may sign in to the explorer.
        client: the app client a sign-in page or tool uses (SRP; no client secret).
        authorizer: API Gateway's Cognito authoriser over `user_pool`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for finding in ("COG3", "COG8"):
            acknowledge(
                self.user_pool,
                finding,
                "Threat protection is the paid Plus feature plan; the pool has no self sign-up "
                "and requires TOTP MFA. Choose the plan per deployment if needed.",
            )
        self.client = self.user_pool.add_client(
            "ExplorerClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[self.user_pool],
            identity_source=apigw.IdentitySource.header("Authorization"),
        )
        integration = apigw.LambdaIntegration(
            handler, proxy=True, allow_test_invoke=False, timeout=Duration.seconds(29)
        )
        for route in EXPLORER_ROUTES:
            resource = rest_api.root.resource_for_path(route.path)
            if route.signed_in:
                resource.add_method(
                    route.method,
                    integration,
                    authorizer=self.authorizer,
                    authorization_type=apigw.AuthorizationType.COGNITO,
                )
                continue
            method = resource.add_method(
                route.method, integration, authorization_type=apigw.AuthorizationType.NONE
            )
            acknowledge(
                method,
                "APIG4",
                f"{route.method} {route.path} serves the explorer's stylesheet, scripts or "
                "sign-in page: public files, no ledger data.",
            )
            acknowledge(method, "COG4", f"{route.path} holds no data and needs no user.")
