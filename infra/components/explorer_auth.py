"""The ledger explorer's routes on API Gateway, and the Amazon Cognito user pool people sign in to.

People who may read the ledger are users of this pool (created by an administrator: no self
sign-up; TOTP MFA required). A browser signs in through the pool's hosted UI (its domain below):
the app client is public (no secret) and allows only the authorization-code flow, which the API
always runs with PKCE, back to `{api}/explorer/callback`; the API verifies the ID token it gets
and keeps it in an `HttpOnly; Secure; SameSite=Lax` cookie (`durable_graph.api.signin`).

Why the function checks the token rather than API Gateway: a browser following a link sends a
cookie, never an `Authorization` header, and API Gateway's Cognito authoriser reads only a
header. So the explorer's methods are open at API Gateway and every one of them but the static
files and the sign-in steps refuses, in the function, a request without a valid ID token
(signature against the pool's keys, issuer, client, `token_use`, expiry:
`durable_graph.oidc`), with a redirect to sign in or a 401, never data. Approval links are not
explorer routes and keep their own single-use tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from durable_graph.backends.aws import names
from infra.components.nag import acknowledge

__all__ = ["EXPLORER_ROUTES", "ExplorerAuth", "ExplorerRoute", "default_domain_prefix"]


@dataclass(frozen=True)
class ExplorerRoute:
    method: str
    path: str
    signed_in: bool  # the function refuses it without a valid ID token


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
    ExplorerRoute("GET", "/explorer/callback", False),
    ExplorerRoute("GET", "/explorer/logout", False),
)


def default_domain_prefix(stack: Stack) -> str:
    """`<stack name>-<account id>`: the hosted UI's prefix must be unique in the region and may
    not contain "aws", "amazon" or "cognito"."""
    slug = re.sub(r"[^a-z0-9-]", "", stack.stack_name.lower())
    for reserved in ("aws", "amazon", "cognito"):
        slug = slug.replace(reserved, "")
    return f"{slug.strip('-')[:40] or 'ledger'}-{Aws.ACCOUNT_ID}"


class ExplorerAuth(Construct):
    """The user pool, its hosted-UI domain and app client, and the explorer's methods.

    Attributes:
        user_pool: who may sign in to the explorer.
        domain: the hosted UI (`https://PREFIX.auth.REGION.amazoncognito.com`).
        client: the public app client: authorization code (+ PKCE) to the API's callback, and
            SRP for tools that sign in without a browser.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        base_url: str,
        handler: lambda_.Function,
        domain_prefix: str | None = None,
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
        self.domain = self.user_pool.add_domain(
            "SignIn",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=domain_prefix or default_domain_prefix(Stack.of(self))
            ),
        )
        self.client = self.user_pool.add_client(
            "ExplorerClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[f"{base_url}/explorer/callback"],
                logout_urls=[f"{base_url}/explorer"],
            ),
        )
        handler.add_environment(names.ENV_EXPLORER_USER_POOL, self.user_pool.user_pool_id)
        handler.add_environment(names.ENV_EXPLORER_CLIENT_ID, self.client.user_pool_client_id)
        handler.add_environment(names.ENV_EXPLORER_SIGNIN_URL, self.domain.base_url())
        integration = apigw.LambdaIntegration(
            handler, proxy=True, allow_test_invoke=False, timeout=Duration.seconds(29)
        )
        for route in EXPLORER_ROUTES:
            resource = rest_api.root.resource_for_path(route.path)
            method = resource.add_method(
                route.method, integration, authorization_type=apigw.AuthorizationType.NONE
            )
            if route.signed_in:
                reason = (
                    f"{route.method} {route.path} is for users of the explorer's Cognito pool; "
                    "the function verifies their ID token (a cookie from the hosted-UI sign-in "
                    "or a Bearer header), which API Gateway's authoriser cannot read from a "
                    "cookie."
                )
            else:
                reason = (
                    f"{route.method} {route.path} serves the explorer's public files or a step "
                    "of the hosted-UI sign-in: no ledger data."
                )
            acknowledge(method, "APIG4", reason)
            acknowledge(method, "COG4", reason)
