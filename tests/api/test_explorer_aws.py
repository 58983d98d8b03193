"""The explorer through the `api` Lambda (functions/api/handler.py) on moto, configured from its
environment as the CDK stack sets it: a user of the moto user pool opens a thread the worker
Lambda ran, and its graph is drawn whole (from the deployment's graph: nothing on AWS publishes
shapes) rather than from the routes taken so far."""

from __future__ import annotations

import pytest

from durable_graph.backends.aws import names
from tests.api.test_handler import Api, api
from tests.aws.conftest import AwsWorld, aws, aws_factory, endpoint
from tests.aws.resources import session

__all__ = ["api", "aws", "aws_factory", "endpoint"]  # fixtures reused

USER, PASSWORD = "reviewer@example.test", "Cc3#cccccccccc"


@pytest.fixture
def id_token(aws: AwsWorld, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user pool in the moto account, the api function's explorer settings pointing at it,
    and an ID token of one of its users. moto signs every pool's tokens with one key pair and
    serves its public half at any pool's JWKS path; the in-process moto has no HTTP listener,
    so the function fetches the key set from the moto server process (`endpoint`)."""
    cognito = session().client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="explorer", UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="explorer",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(
        UserPoolId=pool_id, Username=USER, UserAttributes=[{"Name": "email", "Value": USER}]
    )
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=USER, Password=PASSWORD, Permanent=True
    )
    monkeypatch.setenv(names.ENV_EXPLORER_USER_POOL, pool_id)
    monkeypatch.setenv(names.ENV_EXPLORER_CLIENT_ID, client_id)
    monkeypatch.setenv(
        names.ENV_EXPLORER_SIGNIN_URL, "https://ledger.auth.us-east-1.amazoncognito.com"
    )
    monkeypatch.setenv(names.ENV_EXPLORER_JWKS_URL, f"{endpoint}/{pool_id}/.well-known/jwks.json")
    token: str = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USER, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    return token


def test_a_thread_run_on_aws_is_drawn_from_the_deployments_graph(
    aws: AwsWorld, api: Api, id_token: str
) -> None:
    """Given a thread the worker ran to its approval on moto
    When a signed-in user opens it through the api Lambda
    Then the graph frame draws the whole graph (the send_email step not yet reached, the
    interrupt marked), the page does not say it was drawn from routes, and nothing was
    published to the table; without the token a browser is sent to sign in."""
    status, started = api.start({"user_prompt": "pay the supplier"}, "msg_explorer_1")
    assert status == 201, started
    thread_id = started["thread"]["thread_id"]
    aws.drain()
    assert aws.head(thread_id).status == "suspended"
    bearer = {"Authorization": f"Bearer {id_token}", "Accept": "text/html"}

    status, _, frame = api.call("GET", f"/explorer/threads/{thread_id}/graph", headers=bearer)
    assert status == 200, frame
    assert "n_send_email --&gt; end_" in frame and "pauses before" in frame
    assert 'src="/v1/explorer/static/mermaid.min.js"' in frame
    status, _, page = api.call("GET", f"/explorer/threads/{thread_id}", headers=bearer)
    assert status == 200 and thread_id in page and "Drawn from the routes" not in page
    shapes = aws.clients.dynamodb.scan(TableName=aws.resources.settings.table_name)["Items"]
    assert not [item for item in shapes if "graph-shapes" in item["pk"]["S"]]

    status, headers, body = api.call(
        "GET", f"/explorer/threads/{thread_id}", headers={"Accept": "text/html"}
    )
    assert status == 303 and thread_id not in body
    assert headers["location"].endswith(
        "/v1/explorer/login?next=%2Fexplorer%2Fthreads%2F" + thread_id
    )
