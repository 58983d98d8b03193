"""The explorer's Cognito user pool, hosted-UI domain and app client in the synthesised stack, and
the api function's sign-in settings: what `durable_graph.api.aws.explorer_auth` is built from.
(The sign-in itself, against moto's user pool: tests/api/test_signin.py.)"""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from durable_graph.api.aws import ApiSettings
from durable_graph.backends.aws import names
from infra.components.explorer_auth import EXPLORER_ROUTES
from infra.components.functions import API, SPECS
from tests.infra.template_queries import function_of, only, resource_paths

EXPLORER_ENV = (
    names.ENV_EXPLORER_USER_POOL,
    names.ENV_EXPLORER_CLIENT_ID,
    names.ENV_EXPLORER_SIGNIN_URL,
)


def _only(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    logical_id, resource = only(template.find_resources(kind))
    properties: dict[str, Any] = resource["Properties"]
    return logical_id, properties


def _joined(value: Any) -> str:
    """A `Fn::Join` as text, references as `{Ref}` / `{Id.Attr}`: what a URL will look like."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "{" + str(value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_joined(part) for part in parts)


def test_only_an_administrator_creates_users_and_mfa_is_required(template: Template) -> None:
    _, pool = _only(template, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[k] for k in ("RequireUppercase", "RequireLowercase", "RequireNumbers"))


def test_the_app_client_signs_browsers_in_with_the_code_flow_to_the_apis_callback(
    template: Template,
) -> None:
    """A public client (no secret: PKCE binds the code), the authorization code flow only (no
    implicit tokens in URLs), openid + email, back to {api}/explorer/callback only."""
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    _, client = _only(template, "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert sorted(client["AllowedOAuthScopes"]) == ["email", "openid"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    (callback,) = client["CallbackURLs"]
    (logout,) = client["LogoutURLs"]
    rest_api_id, _ = _only(template, "AWS::ApiGateway::RestApi")
    assert _joined(callback) == (
        f"https://{{{rest_api_id}}}.execute-api.{{AWS::Region}}.{{AWS::URLSuffix}}"
        "/v1/explorer/callback"
    )
    assert _joined(logout) == _joined(callback).removesuffix("/callback")
    assert client["UserPoolId"] == {"Ref": pool_id}


def test_the_hosted_ui_has_a_domain_named_after_the_stack_and_account(template: Template) -> None:
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    _, domain = _only(template, "AWS::Cognito::UserPoolDomain")
    assert domain["UserPoolId"] == {"Ref": pool_id}
    assert _joined(domain["Domain"]) == "durablegraph-{AWS::AccountId}"


def test_only_the_api_function_gets_the_sign_in_settings_and_they_read_back(
    template: Template,
) -> None:
    """The api function's environment names the pool, the client and the hosted UI, and
    ApiSettings accepts them (with placeholder values for the references); no other function
    has them."""
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    client_id, _ = _only(template, "AWS::Cognito::UserPoolClient")
    domain_id, _ = _only(template, "AWS::Cognito::UserPoolDomain")
    _, api = function_of(template, API)
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables[names.ENV_EXPLORER_USER_POOL] == {"Ref": pool_id}
    assert variables[names.ENV_EXPLORER_CLIENT_ID] == {"Ref": client_id}
    assert _joined(variables[names.ENV_EXPLORER_SIGNIN_URL]) == (
        f"https://{{{domain_id}}}.auth.{{AWS::Region}}.amazoncognito.com"
    )
    assert names.ENV_EXPLORER_JWKS_URL not in variables  # the issuer's own JWKS
    for spec in SPECS:
        if spec != API:
            _, other = function_of(template, spec)
            assert not set(EXPLORER_ENV) & set(other["Properties"]["Environment"]["Variables"])

    settings = ApiSettings.from_env(
        {
            names.ENV_SIGNING_KEY_PARAM: "sk",
            names.ENV_WEBHOOK_SECRET_PARAM: "ws",
            names.ENV_PUBLIC_BASE_URL: "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
            names.ENV_GRAPH: "examples.email_approval:graph",
            names.ENV_EXPLORER_USER_POOL: "eu-west-1_AbC123",
            names.ENV_EXPLORER_CLIENT_ID: "4f0example",
            names.ENV_EXPLORER_SIGNIN_URL: "https://ledger-1.auth.eu-west-1.amazoncognito.com",
        }
    )
    assert settings.explorer_issuer == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    )


def test_explorer_routes_reach_the_function_which_checks_the_token(template: Template) -> None:
    """No API Gateway authoriser on the explorer (a browser's cookie never reaches one): every
    explorer method goes to the api function, which refuses it without a valid ID token
    (tests/api/test_signin.py); approval links keep their own tokens."""
    assert not template.find_resources("AWS::ApiGateway::Authorizer")
    paths = resource_paths(template)
    methods = {
        (m["Properties"]["HttpMethod"], paths[m["Properties"]["ResourceId"]["Ref"]]): m[
            "Properties"
        ]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
    }
    for route in EXPLORER_ROUTES:
        method = methods[(route.method, route.path)]
        assert method["AuthorizationType"] == "NONE", route
        assert method["Integration"]["Type"] == "AWS_PROXY", route
    for approval in (("GET", "/approvals/{token}"), ("POST", "/approvals/{token}")):
        assert methods[approval]["AuthorizationType"] == "NONE"  # the link's own token


def test_the_stack_outputs_the_pool_client_and_explorer_url(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert {"ExplorerUserPoolId", "ExplorerClientId", "ExplorerUrl"} <= set(outputs)
    assert _joined(outputs["ExplorerUrl"]["Value"]).endswith("/v1/explorer")
