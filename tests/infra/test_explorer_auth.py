"""The explorer's Cognito user pool and API Gateway authoriser in the synthesised stack, and the
claims a Cognito ID token carries (issued by moto) read by the explorer the way the authoriser
hands them over."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from durable_graph.api import build_resolver
from durable_graph.api.config import Api, ApiConfig
from durable_graph.api.explorer_auth import CognitoAuth
from durable_graph.api.local import local_api
from durable_graph.api.proxy import event_from_http, http_from_result
from durable_graph.backends.local import local_backend
from infra.components.explorer_auth import EXPLORER_ROUTES
from tests.helpers import thread_record
from tests.infra.test_stack import app_and_stack, resource_paths, template

__all__ = ["app_and_stack", "template"]  # the module's one synthesis, shared with test_stack

GRAPH = "examples.email_approval:graph"


def _pool(template: Template) -> dict[str, Any]:
    pools = template.find_resources("AWS::Cognito::UserPool")
    assert len(pools) == 1
    properties: dict[str, Any] = next(iter(pools.values()))["Properties"]
    return properties


def test_only_an_administrator_creates_users_and_mfa_is_required(template: Template) -> None:
    pool = _pool(template)
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[k] for k in ("RequireUppercase", "RequireLowercase", "RequireNumbers"))
    clients = template.find_resources("AWS::Cognito::UserPoolClient")
    (client,) = clients.values()
    assert client["Properties"]["GenerateSecret"] is False
    assert client["Properties"]["PreventUserExistenceErrors"] == "ENABLED"


def test_explorer_routes_are_behind_the_cognito_authorizer_and_approvals_are_not(
    template: Template,
) -> None:
    authorizers = template.find_resources("AWS::ApiGateway::Authorizer")
    assert len(authorizers) == 1
    (authorizer_id, authorizer), *_ = authorizers.items()
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    (pool_id,) = template.find_resources("AWS::Cognito::UserPool")
    assert authorizer["Properties"]["ProviderARNs"] == [{"Fn::GetAtt": [pool_id, "Arn"]}]

    paths = resource_paths(template)
    methods = {
        (m["Properties"]["HttpMethod"], paths[m["Properties"]["ResourceId"]["Ref"]]): m[
            "Properties"
        ]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
    }
    for route in EXPLORER_ROUTES:
        method = methods[(route.method, route.path)]
        if route.signed_in:
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", route
            assert method["AuthorizerId"] == {"Ref": authorizer_id}, route
        else:
            assert method["AuthorizationType"] == "NONE" and "AuthorizerId" not in method
    guarded = [p for p in methods.values() if p.get("AuthorizerId")]
    assert len(guarded) == sum(r.signed_in for r in EXPLORER_ROUTES)
    for approval in (("GET", "/approvals/{token}"), ("POST", "/approvals/{token}")):
        assert methods[approval]["AuthorizationType"] == "NONE"  # the link's own token


def test_the_stack_outputs_the_pool_and_client_ids(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert {"ExplorerUserPoolId", "ExplorerClientId"} <= set(outputs)


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@mock_aws
def test_a_cognito_users_claims_open_the_explorer(template: Template, tmp_path: Path) -> None:
    """Given a pool made with the template's settings on moto and a user an administrator
    created, the ID token's claims, as API Gateway's authoriser passes them, open the thread
    list (and name the user); the same request without them is 401 with no data."""
    pool = _pool(template)
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = cognito.create_user_pool(
        PoolName="explorer",
        Policies=pool["Policies"],
        AdminCreateUserConfig=pool["AdminCreateUserConfig"],
        UsernameAttributes=pool["UsernameAttributes"],
        MfaConfiguration="OFF",  # moto has no TOTP device to answer the challenge with
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="explorer",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username="reviewer@example.test",
        UserAttributes=[{"Name": "email", "Value": "reviewer@example.test"}],
    )
    cognito.admin_set_user_password(
        UserPoolId=pool_id,
        Username="reviewer@example.test",
        Password="Cc3#cccccccccc",
        Permanent=True,
    )
    tokens = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "reviewer@example.test", "PASSWORD": "Cc3#cccccccccc"},
    )["AuthenticationResult"]
    claims = _claims(tokens["IdToken"])

    backend = local_backend(tmp_path)
    try:
        local = local_api(tmp_path, backend, public_url="https://x.test", graphs=(GRAPH,)).config
        api = Api(
            ApiConfig(
                backend=backend,
                keys=local.keys,
                webhook_secrets=local.webhook_secrets,
                auth=CognitoAuth(),
                public_base_url="https://x.test",
                graphs=(GRAPH,),
                explorer_auth=CognitoAuth(),
            )
        )
        resolver = build_resolver(api)
        backend.checkpoints.put_thread(thread_record("seen-1", "suspended"), expected_revision=None)
        event = event_from_http("GET", "/explorer", [], b"")
        status, _, body = http_from_result(resolver.resolve(event, None))  # type: ignore[arg-type]
        assert status == 401 and b"seen-1" not in body
        event["requestContext"]["authorizer"] = {"claims": claims}
        status, _, body = http_from_result(resolver.resolve(event, None))  # type: ignore[arg-type]
        assert status == 200 and b"seen-1" in body
        assert CognitoAuth().authenticate(resolver.current_event).actor.id == (
            "oidc:reviewer@example.test"
        )
    finally:
        backend.close()


@pytest.mark.parametrize("claims", [{}, {"email": "no-sub@example.test"}])
def test_claims_without_a_subject_are_refused(claims: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from durable_graph.api.errors import Unauthorized

    event = event_from_http("GET", "/explorer", [], b"")
    event["requestContext"]["authorizer"] = {"claims": claims}
    with pytest.raises(Unauthorized):
        CognitoAuth().authenticate(APIGatewayProxyEvent(event))
