"""Who is calling (`durable_graph.api.identity`): every authenticator answers with an Identity,
the routes record its actor, and `identify` tells a public route who is signed in, if anyone."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api.auth import ApiKeyAuth, IamAuth
from durable_graph.api.errors import Unauthorized
from durable_graph.api.explorer_auth import SESSION_COOKIE, SessionAuth
from durable_graph.api.identity import Identity, identify
from durable_graph.api.proxy import event_from_http
from tests.api.conftest import LocalApi

KEY = "k" * 24
TOKEN = "t" * 32


def _event(headers: dict[str, str], identity: dict[str, str] | None = None) -> APIGatewayProxyEvent:
    event = event_from_http("GET", "/explorer", list(headers.items()), b"")
    if identity is not None:
        event["requestContext"]["identity"] = identity
    return APIGatewayProxyEvent(event)


def test_each_authenticator_names_its_caller() -> None:
    """Given a named API key, the session token and an IAM request context
    Then each gives its method and subject, and only the session is a person."""
    keyed = ApiKeyAuth(KEY, name="billing-bot").authenticate(_event({"x-api-key": KEY}))
    assert keyed == Identity(method="api_key", subject="billing-bot")
    assert not keyed.person and keyed.actor.kind == "api" and keyed.actor.id == "billing-bot"

    session = SessionAuth(TOKEN, ApiKeyAuth(KEY))
    person = session.authenticate(_event({"cookie": f"{SESSION_COOKIE}={TOKEN}"}))
    assert person.method == "session" and person.person
    assert person.actor.kind == "human"

    arn = "arn:aws:iam::123456789012:user/ops"
    iam = IamAuth().authenticate(_event({}, {"userArn": arn}))
    assert iam == Identity(method="iam", subject=arn) and iam.actor.id == arn


def test_the_same_caller_has_one_key_whatever_its_email() -> None:
    a = Identity(method="oidc", subject="sub-1", email="a@example.test", issuer="https://idp")
    renamed = Identity(
        method="oidc", subject="sub-1", email="new@example.test", issuer="https://idp"
    )
    other = Identity(method="oidc", subject="sub-2", email="a@example.test", issuer="https://idp")
    assert a.key == renamed.key and a.key != other.key
    assert a.actor.id == "oidc:a@example.test" and a.person


def test_identify_answers_none_instead_of_refusing() -> None:
    auth = SessionAuth(TOKEN, ApiKeyAuth(KEY))
    assert identify(auth, _event({})) is None
    assert identify(None, _event({"cookie": f"{SESSION_COOKIE}={TOKEN}"})) is None
    found = identify(auth, _event({"cookie": f"{SESSION_COOKIE}={TOKEN}"}))
    assert found is not None and found.method == "session"
    with pytest.raises(Unauthorized):
        auth.authenticate(_event({"x-api-key": "wrong" * 5}))


def test_a_fork_records_the_api_keys_name_as_its_actor(local: LocalApi) -> None:
    """Given a suspended thread, when it is forked with the API key
    Then the fork's first record names the key's holder as its actor."""
    thread_id = local.suspended_thread()
    body = json.dumps({"step": 1, "new_thread_id": "forked-by-key"})
    reply = local.client.request(
        "POST", f"/threads/{thread_id}/fork", headers=local.authed(), body=body
    )
    assert reply.status == 201, reply.body
    record = local.backend.checkpoints.get_checkpoint("forked-by-key", 0)
    assert record is not None
    assert (record.actor.kind, record.actor.id) == ("api", "api-key")
