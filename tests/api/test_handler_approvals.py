"""Approval rules through the `api` Lambda on moto: the four-eyes payment graph deployed, links
decided by people of the stack's Cognito user pool, each sending the ID token moto's
cognito-idp issued them (`Authorization: Bearer`, verified in the function against the pool's
keys: `explorer_auth.OidcAuth`), the worker Lambda draining the queue. The requester is refused
(403), an anonymous decision too (401), the first approver is recorded and the thread waits
(202), the same person counts once (403), the second person resumes it, and the ledger names
that person as the resume step's actor."""

from __future__ import annotations

import copy
import gzip
import json
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import pytest

from durable_graph.api.webhooks import sign
from durable_graph.backends.aws import names
from durable_graph.backends.aws.local_poller import LocalLambdaContext
from functions.api import handler as api_handler
from tests.api.test_handler import CALLER, EVENT, STAGE_URL, Api, deploy_api
from tests.aws.conftest import AwsWorld, aws_factory
from tests.aws.resources import session
from tests.local_http import in_background

__all__ = ["aws_factory"]

JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST = {"requested_by": "alice@example.com", "payee": "ACME GmbH", "amount_eur": 25_000}
PEOPLE = ("alice", "bob", "carol", "dan")
PASSWORD = "Cc3#cccccccccc"


@pytest.fixture
def aws(aws_factory: Callable[..., AwsWorld]) -> AwsWorld:
    return aws_factory(graph="examples.four_eyes:graph")


@pytest.fixture
def jwks_url() -> Iterator[str]:
    """moto's cognito-idp signs every pool's tokens with one key; its public half, served."""
    packaged = resources.files("moto.cognitoidp").joinpath("resources", "jwks-public.json.gz")
    body = gzip.decompress(packaged.read_bytes())

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            del args

    with in_background(ThreadingHTTPServer(("127.0.0.1", 0), Keys)) as url:
        yield f"{url}/.well-known/jwks.json"


@pytest.fixture
def tokens(aws: AwsWorld, jwks_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A user pool like the stack's, one user per person, the api function's environment
    naming it (as the stack sets it), and each person's ID token."""
    cognito = session().client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="people", UsernameAttributes=["email"])
    pool_id = pool["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="api", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    found: dict[str, str] = {}
    for name in PEOPLE:
        email = f"{name}@example.com"
        cognito.admin_create_user(
            UserPoolId=pool_id, Username=email, UserAttributes=[{"Name": "email", "Value": email}]
        )
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True
        )
        found[name] = cognito.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]["IdToken"]
    monkeypatch.setenv(names.ENV_EXPLORER_USER_POOL, pool_id)
    monkeypatch.setenv(names.ENV_EXPLORER_CLIENT_ID, client_id)
    monkeypatch.setenv(names.ENV_EXPLORER_SIGNIN_URL, "https://people.auth.example.test")
    monkeypatch.setenv(names.ENV_EXPLORER_JWKS_URL, jwks_url)
    return found


@pytest.fixture
def api(tokens: dict[str, str], aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The handler's fixture, built after the pool's environment is set."""
    del tokens, aws  # built after them: the pool's environment is set, moto is running
    return deploy_api(monkeypatch)


def decide(
    api: Api, path: str, decision: str, person: str | None, tokens: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST the link as API Gateway passes it on; `person` sends their ID token."""
    event: dict[str, Any] = copy.deepcopy(json.loads(EVENT.read_text()))
    body = json.dumps({"decision": decision, "comment": f"{person}: ok"})
    event.update(httpMethod="POST", path=path, resource="/approvals/{token}", body=body)
    event["headers"].update(JSON_HEADERS)
    event["requestContext"].update(httpMethod="POST", path=f"/v1{path}")
    if person is not None:
        event["headers"]["Authorization"] = f"Bearer {tokens[person]}"
    result = api_handler.handler(event, LocalLambdaContext(function_name="durable-graph-api"))
    return int(result["statusCode"]), json.loads(result["body"])


def table_items(world: AwsWorld) -> list[dict[str, Any]]:
    items = world.clients.dynamodb.scan(TableName=world.resources.settings.table_name)["Items"]
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True, default=repr))


def test_four_eyes_on_lambda_requester_refused_two_people_resume(
    aws: AwsWorld, api: Api, tokens: dict[str, str]
) -> None:
    raw = json.dumps({"input": REQUEST}).encode()
    headers = sign(api.webhook_secret, "msg_pay_1", int(time.time()), raw)
    status, _, body = api.call("POST", "/threads", body=raw, headers=headers)
    assert status == 201, body
    thread_id = json.loads(body)["thread"]["thread_id"]
    aws.drain()
    assert aws.head(thread_id).status == "suspended"
    (note,) = [n for n in aws.notifications() if n["thread_id"] == thread_id]
    path = note["links"]["approval"].removeprefix(STAGE_URL)
    before = table_items(aws)

    status, refused = decide(api, path, "approve", "alice", tokens)
    assert status == 403 and refused["error"]["code"] == "approval_refused", refused
    status, anonymous = decide(api, path, "approve", None, tokens)
    assert status == 401 and anonymous["error"]["code"] == "sign_in_required", anonymous
    assert table_items(aws) == before

    status, first = decide(api, path, "approve", "bob", tokens)
    assert status == 202, first
    assert first["thread_status"] == "suspended" and first["approvals"]["required"] == 2
    assert [a["by"] for a in first["approvals"]["approvals"]] == ["oidc:bob@example.com"]
    status, _, body = api.call("GET", f"/threads/{thread_id}", caller=CALLER)
    shown = json.loads(body)
    assert shown["status"] == "suspended"
    assert [a["by"] for a in shown["approvals"]["approvals"]] == ["oidc:bob@example.com"]
    recorded = table_items(aws)
    status, again = decide(api, path, "approve", "bob", tokens)
    assert status == 403 and "already approved" in again["error"]["message"], again
    assert table_items(aws) == recorded

    status, second = decide(api, path, "approve", "carol", tokens)
    assert status == 200, second
    assert second["decision"]["decided_by"] == "oidc:carol@example.com"
    aws.drain()
    head = aws.head(thread_id)
    assert head.status == "completed" and head.values["outcome"] == "released"
    resume = aws.rt.backend.checkpoints.get_checkpoint(thread_id, second["decision"]["step"] + 1)
    assert resume is not None and (resume.actor.kind, resume.actor.id) == (
        "human",
        "oidc:carol@example.com",
    )
    status, _, body = api.call("GET", f"/threads/{thread_id}/history", caller=CALLER)
    actors = [i["actor"]["id"] for i in json.loads(body)["items"]]
    assert "oidc:carol@example.com" in actors
    # bob's approval is hashed with carol's resume step, and verify names both
    assert resume.signoff is not None
    assert [(a.actor.id, a.method, a.via[:5]) for a in resume.signoff.approvals] == [
        ("oidc:bob@example.com", "oidc", "link "),
        ("oidc:carol@example.com", "oidc", "link "),
    ]
    status, _, body = api.call("GET", f"/threads/{thread_id}/verify", caller=CALLER)
    report = json.loads(body)
    assert status == 200 and report["ok"], report
    assert report["approved"] == {
        str(resume.step): ["human:oidc:bob@example.com", "human:oidc:carol@example.com"]
    }


def test_the_resume_route_counts_the_iam_caller_as_one_approver(
    aws: AwsWorld, api: Api, tokens: dict[str, str]
) -> None:
    """Given the suspended payment, when an IAM-signed operator resumes it through the API,
    then that is one approval (202, the thread waits) and the same principal cannot be the
    second; a Cognito user's link decision then completes it."""
    raw = json.dumps({"input": REQUEST}).encode()
    headers = sign(api.webhook_secret, "msg_pay_2", int(time.time()), raw)
    status, _, body = api.call("POST", "/threads", body=raw, headers=headers)
    thread_id = json.loads(body)["thread"]["thread_id"]
    aws.drain()
    resume = json.dumps(
        {"values": {"approved": True}, "as_node": "approve_payment", "expected_step": 1}
    ).encode()

    status, _, body = api.call(
        "POST", f"/threads/{thread_id}/resume", body=resume, headers=JSON_HEADERS, caller=CALLER
    )
    assert status == 202, body
    assert [a["by"] for a in json.loads(body)["approvals"]["approvals"]] == [CALLER]
    status, _, body = api.call(
        "POST", f"/threads/{thread_id}/resume", body=resume, headers=JSON_HEADERS, caller=CALLER
    )
    assert status == 403, body

    (note,) = [n for n in aws.notifications() if n["thread_id"] == thread_id]
    status, done = decide(
        api, note["links"]["approval"].removeprefix(STAGE_URL), "approve", "dan", tokens
    )
    assert status == 200, done
    aws.drain()
    assert aws.head(thread_id).values["outcome"] == "released"
