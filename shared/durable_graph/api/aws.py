"""The API on AWS: settings from the Lambda environment, secrets from Secrets Manager or SSM,
IAM as the authenticator of programs, the Cognito user pool (hosted-UI sign-in, ID tokens
verified in the function: `explorer_auth.OidcAuth`) of people on the explorer. Clients are
passed in (built lazily by the function), so this module does not import boto3.

`aws_resolver` is the `api` function's cold start: a deployment whose configuration cannot work
(a variable missing or malformed, a webhook secret not in `whsec_` form) is logged once, with
what is wrong, and every request is answered 503 with that JSON error until it is fixed, instead
of a 500 (and a traceback) per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from durable_graph.api.app import build_resolver
from durable_graph.api.auth import IamAuth
from durable_graph.api.config import Api, ApiConfig
from durable_graph.api.errors import ServiceMisconfigured, error_body
from durable_graph.api.explorer_auth import OidcAuth
from durable_graph.api.keys import (
    KeyProvider,
    SecretsManagerClient,
    SecretsManagerKeys,
    SecretsManagerSecrets,
    SecretSource,
    SsmClient,
    SsmParameterKeys,
    SsmParameterSecrets,
)
from durable_graph.api.signin import HostedUi
from durable_graph.backend import Backend
from durable_graph.backends.aws import names
from durable_graph.backends.aws.settings import SettingsError, settings_from_env
from durable_graph.clock import Clock, SystemClock
from durable_graph.oidc import Jwks, TokenVerifier

log = logging.getLogger("durable_graph.api.aws")

ENV_KEYS: dict[str, str] = {
    "signing_key": names.ENV_SIGNING_KEY_PARAM,
    "webhook_secret": names.ENV_WEBHOOK_SECRET_PARAM,
    "public_base_url": names.ENV_PUBLIC_BASE_URL,
    "graph": names.ENV_GRAPH,
    "explorer_user_pool": names.ENV_EXPLORER_USER_POOL,
    "explorer_client_id": names.ENV_EXPLORER_CLIENT_ID,
    "explorer_signin_url": names.ENV_EXPLORER_SIGNIN_URL,
    "explorer_jwks_url": names.ENV_EXPLORER_JWKS_URL,
}
_EXPLORER = ("explorer_user_pool", "explorer_client_id", "explorer_signin_url")


class ApiSettings(BaseModel):
    """Attributes:
    signing_key: Secrets Manager secret ARN (or SSM parameter name) of the link signing key.
    webhook_secret: the same, for the Standard Webhooks secret of `POST /threads`.
    public_base_url: the stage URL approval links start with.
    graph: the graph `POST /threads` starts.
    explorer_user_pool: the Cognito user pool whose users may open the explorer (its id,
        `REGION_xxxx`); with `explorer_client_id` and `explorer_signin_url`, or none of them
        (no explorer).
    explorer_client_id: the pool's app client for the hosted-UI sign-in.
    explorer_signin_url: the hosted UI's origin (`https://PREFIX.auth.REGION.amazoncognito.com`).
    explorer_jwks_url: where the pool's signing keys are, if not at its issuer's JWKS URL.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_key: str = Field(min_length=1)
    webhook_secret: str = Field(min_length=1)
    public_base_url: str = Field(pattern=r"^https?://")
    graph: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    explorer_user_pool: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d_\w+$")
    explorer_client_id: str | None = Field(default=None, pattern=r"^[\w+]+$")
    explorer_signin_url: str | None = Field(default=None, pattern=r"^https?://[^/]+$")
    explorer_jwks_url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _explorer_all_or_nothing(self) -> ApiSettings:
        given = [name for name in _EXPLORER if getattr(self, name)]
        if given and len(given) != len(_EXPLORER):
            missing = [ENV_KEYS[name] for name in _EXPLORER if name not in given]
            raise ValueError(f"the explorer's sign-in also needs {', '.join(missing)}")
        return self

    @property
    def explorer_issuer(self) -> str | None:
        """The pool's OIDC issuer: what its tokens' `iss` says."""
        if not self.explorer_user_pool:
            return None
        region = self.explorer_user_pool.split("_", 1)[0]
        return f"https://cognito-idp.{region}.amazonaws.com/{self.explorer_user_pool}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        return settings_from_env(cls, ENV_KEYS, environ, "API")


def _is_secret_arn(reference: str) -> bool:
    return reference.startswith("arn:") and ":secretsmanager:" in reference


def key_provider(
    reference: str, *, secretsmanager: SecretsManagerClient, ssm: SsmClient
) -> KeyProvider:
    if _is_secret_arn(reference):
        return SecretsManagerKeys(secretsmanager, reference)
    return SsmParameterKeys(ssm, reference)


def secret_source(
    reference: str, *, secretsmanager: SecretsManagerClient, ssm: SsmClient
) -> SecretSource:
    if _is_secret_arn(reference):
        return SecretsManagerSecrets(secretsmanager, reference)
    return SsmParameterSecrets(ssm, reference)


def explorer_auth(settings: ApiSettings, clock: Clock) -> OidcAuth | None:
    """The explorer's sign-in over the settings' user pool (None: the deployment has none)."""
    issuer = settings.explorer_issuer
    if not (issuer and settings.explorer_client_id and settings.explorer_signin_url):
        return None
    keys = Jwks(settings.explorer_jwks_url or f"{issuer}/.well-known/jwks.json")
    return OidcAuth(
        TokenVerifier(issuer=issuer, client_id=settings.explorer_client_id, keys=keys),
        HostedUi(
            domain_url=settings.explorer_signin_url,
            client_id=settings.explorer_client_id,
            base_url=settings.public_base_url,
        ),
        clock,
    )


def aws_api(
    settings: ApiSettings,
    backend: Backend,
    *,
    secretsmanager: SecretsManagerClient,
    ssm: SsmClient,
    clock: Clock | None = None,
) -> Api:
    """The API over the AWS backend. Nothing is fetched until a request needs it.

    The worker function calls this too, then `install_links()`, so the suspensions it commits
    carry approval links (it needs read access to the signing key only).
    """
    clock = clock or SystemClock()
    config = ApiConfig(
        backend=backend,
        keys=key_provider(settings.signing_key, secretsmanager=secretsmanager, ssm=ssm),
        webhook_secrets=secret_source(
            settings.webhook_secret, secretsmanager=secretsmanager, ssm=ssm
        ),
        auth=IamAuth(),
        explorer_auth=explorer_auth(settings, clock),
        public_base_url=settings.public_base_url,
        graphs=(settings.graph,),
        clock=clock,
    )
    return Api(config)


def aws_resolver(build: Callable[[], Api]) -> APIGatewayRestResolver:
    """The `api` function's resolver, built at cold start by `build`, with the configuration
    checked now rather than at the first request that needs it (the webhook secret is fetched
    and checked here). On a configuration error: one error log line, and a resolver that
    answers every request 503 with the error (`misconfigured_resolver`)."""
    try:
        api = build()
        api.webhooks.secrets()
    except (ServiceMisconfigured, SettingsError) as exc:
        problem = exc if isinstance(exc, ServiceMisconfigured) else ServiceMisconfigured(str(exc))
        log.error("the API cannot serve requests: %s", problem, extra={"code": problem.code})
        return misconfigured_resolver(problem)
    # A resume that suspends again (a second approval) gets its link minted here.
    api.install_links()
    return build_resolver(api)


def misconfigured_resolver(problem: ServiceMisconfigured) -> APIGatewayRestResolver:
    """Answers every method on every path with 503 and `problem` as the JSON error."""
    app = APIGatewayRestResolver()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.route(".+", method=methods)  # type: ignore[untyped-decorator,unused-ignore]
    def unavailable() -> Response[Any]:
        return Response(
            status_code=problem.status,
            content_type="application/json",
            body=error_body(problem),
            headers={"Retry-After": "300", "Cache-Control": "no-store"},
        )

    return app
