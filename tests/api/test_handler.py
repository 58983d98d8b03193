"""The `api` Lambda (functions/api/handler.py) on moto: API Gateway proxy events in, the AWS
backend (DynamoDB, S3, SQS FIFO, SNS) and Secrets Manager behind, the worker Lambda draining
the queue — the seed exercise as it runs on AWS."""

from __future__ import annotations

import copy
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from durable_graph.api.keys import new_webhook_secret
from durable_graph.api.webhooks import sign
from durable_graph.backends.aws import names
from durable_graph.backends.aws.local_poller import InvocationCrashed, LocalLambdaContext
from functions.api import handler as api_handler
from tests.aws.conftest import AwsWorld, aws, aws_factory, reset_runtime
from tests.aws.resources import session

__all__ = ["aws", "aws_factory"]  # fixtures reused from the AWS runtime's tests

EVENT = Path(__file__).with_name("events") / "api_gateway_rest.json"
STAGE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
CALLER = "arn:aws:iam::123456789012:user/operator"


class Api:
    """Invokes the handler as API Gateway's Lambda proxy integration would."""

    def __init__(self, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        caller: str | None = None,
    ) -> tuple[int, dict[str, Any], str]:
        event: dict[str, Any] = copy.deepcopy(json.loads(EVENT.read_text()))
        event.update(httpMethod=method, path=path, resource=path, body=body.decode() or None)
        event["headers"].update(headers or {})
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}", resourcePath=path)
        event["requestContext"]["identity"]["userArn"] = caller
        result = api_handler.handler(event, LocalLambdaContext(function_name="durable-graph-api"))
        merged = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        merged.update({k.lower(): v[0] for k, v in (result.get("multiValueHeaders") or {}).items()})
        return int(result["statusCode"]), merged, str(result["body"])

    def start(self, values: dict[str, Any], webhook_id: str) -> tuple[int, dict[str, Any]]:
        raw = json.dumps({"input": values}).encode()
        headers = sign(self.webhook_secret, webhook_id, int(time.time()), raw)
        status, _, body = self.call("POST", "/threads", body=raw, headers=headers)
        return status, json.loads(body)


def deploy_api(monkeypatch: pytest.MonkeyPatch) -> Api:
    """The API's secrets in Secrets Manager and its environment, as the CDK stack sets them
    (inside a moto account the caller set up)."""
    sm = session().client("secretsmanager")
    signing = sm.create_secret(Name="approval-key", SecretString=secrets.token_urlsafe(48))["ARN"]
    webhook = new_webhook_secret()
    webhook_arn = sm.create_secret(Name="webhook-secret", SecretString=webhook)["ARN"]
    monkeypatch.setenv(names.ENV_SIGNING_KEY_PARAM, signing)
    monkeypatch.setenv(names.ENV_WEBHOOK_SECRET_PARAM, webhook_arn)
    monkeypatch.setenv(names.ENV_PUBLIC_BASE_URL, STAGE_URL)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    reset_runtime()
    api_handler.resolver.cache_clear()
    return Api(webhook)


@pytest.fixture
def api(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> Api:
    return deploy_api(monkeypatch)


def test_seed_exercise_through_the_lambda_handler(aws: AwsWorld, api: Api) -> None:
    """Given the api and worker Lambdas on moto
    When a signed webhook event starts the email graph, the worker drains the queue, the link
    from the SNS notification is opened and approved, and the worker drains again
    Then the notification carries a link under the stage URL, the page shows the draft,
    send_email runs once and the thread completes; operators read it with IAM only."""
    status, started = api.start({"user_prompt": "pay the supplier"}, "msg_aws_1")
    assert status == 201, started
    thread_id = started["thread"]["thread_id"]
    again, replay = api.start({"user_prompt": "pay the supplier"}, "msg_aws_1")
    assert again == 200 and replay["replayed"] is True

    aws.drain()
    assert aws.head(thread_id).status == "suspended"
    notes = [n for n in aws.notifications() if n["thread_id"] == thread_id]
    assert len(notes) == 1 and notes[0]["node"] == "human_review"
    link = notes[0]["links"]["approval"]
    assert link.startswith(f"{STAGE_URL}/approvals/")
    path = link.removeprefix(STAGE_URL)

    status, headers, page = api.call("GET", path, headers={"Accept": "text/html"})
    assert status == 200 and "wire USD 250,000" in page
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]

    decision = json.dumps({"decision": "approve", "comment": "ok"}).encode()
    status, _, body = api.call(
        "POST", path, body=decision, headers={"Content-Type": "application/json"}
    )
    assert status == 200, body
    assert json.loads(body)["decision"]["applied_step"] == 2

    aws.drain()
    assert aws.head(thread_id).status == "completed"
    assert len(aws.sent_emails()) == 1

    status, _, body = api.call("GET", f"/threads/{thread_id}", caller=CALLER)
    assert status == 200 and json.loads(body)["values"]["outcome"] == "sent"
    status, _, body = api.call("GET", f"/threads/{thread_id}")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    status, _, body = api.call(
        "POST", path, body=decision, headers={"Content-Type": "application/json"}
    )
    assert status == 200 and json.loads(body)["replayed"] is True
    assert len(aws.sent_emails()) == 1


def test_bad_requests_on_lambda_change_nothing(aws: AwsWorld, api: Api) -> None:
    """Given the api Lambda on moto
    When a webhook is badly signed, a link is forged, and a resume is stale
    Then 401, 404 and 409 with JSON errors, and the table holds nothing new."""
    table = aws.resources.settings.table_name

    def items() -> list[dict[str, Any]]:
        return sorted(
            aws.clients.dynamodb.scan(TableName=table)["Items"],
            key=lambda i: json.dumps(i, sort_keys=True, default=repr),
        )

    raw = json.dumps({"input": {"user_prompt": "x"}}).encode()
    headers = sign(new_webhook_secret(), "msg_forged", int(time.time()), raw)
    before = items()
    status, _, body = api.call("POST", "/threads", body=raw, headers=headers)
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    status, _, body = api.call("POST", "/approvals/abc.def", body=b'{"decision": "approve"}')
    assert status == 404 and json.loads(body)["error"]["code"] == "link_not_found"
    status, _, body = api.call(
        "POST", "/threads/none/resume", body=b'{"expected_step": 0}', caller=CALLER
    )
    assert status == 404 and json.loads(body)["error"]["code"] == "thread_not_found"
    assert items() == before


MISCONFIGURED_REQUESTS = [
    ("POST", "/threads", None),
    ("GET", "/threads/tx-1", CALLER),
    ("GET", "/approvals/abc.def", None),
]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (names.ENV_WEBHOOK_SECRET_PARAM, "not base64!", "not a Standard Webhooks secret"),
        (names.ENV_WEBHOOK_SECRET_PARAM, "A" * 64, "does not start with 'whsec_'"),
        (names.ENV_PUBLIC_BASE_URL, "ftp://nowhere", names.ENV_PUBLIC_BASE_URL),
    ],
)
def test_a_misconfigured_api_answers_503_and_logs_once(
    aws: AwsWorld,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
    problem: str,
) -> None:
    """Given the api Lambda deployed with a webhook secret not in `whsec_` form (or a bad
    setting), when requests arrive, then the cold start logs the problem once and every request
    gets 503 with a JSON error saying what is wrong; nothing answers 500."""
    if variable == names.ENV_WEBHOOK_SECRET_PARAM:
        sm = session().client("secretsmanager")
        value = sm.create_secret(Name="malformed-webhook-secret", SecretString=value)["ARN"]
    monkeypatch.setenv(variable, value)
    api_handler.resolver.cache_clear()

    answers = [
        api.call(method, path, caller=caller) for method, path, caller in MISCONFIGURED_REQUESTS
    ]

    for status, headers, body in answers:
        assert status == 503 and headers["content-type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["code"] == "misconfigured" and problem in error["message"]
    logged = [r for r in caplog.records if "cannot serve requests" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"


def test_a_decision_that_died_before_its_resume_refuses_the_other_and_replays(
    aws: AwsWorld, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a suspended thread whose link's approval was recorded (one CAS, read by nobody
    first) and whose Lambda then died before the resume step was written
    When the same link is posted with "reject", then again with "approve"
    Then the reject gets 409 naming the recorded approval and changes nothing; the approval's
    replay writes the resume step once, and the email goes out once."""
    status, started = api.start({"user_prompt": "pay the supplier"}, "msg_aws_crash")
    assert status == 201, started
    thread_id = started["thread"]["thread_id"]
    aws.drain()
    [note] = [n for n in aws.notifications() if n["thread_id"] == thread_id]
    path = str(note["links"]["approval"]).removeprefix(STAGE_URL)
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def dies_after_the_decision(client: BaseClient, operation: str, params: Any) -> Any:
        answer = original(client, operation, params)
        body = str(params.get("Item", {}).get("body", {}).get("S", ""))
        key = str(params.get("Item", {}).get("sk", {}).get("S", ""))
        if operation == "PutItem" and key.startswith("rec#approval#") and '"accepted"' in body:
            raise InvocationCrashed("the api Lambda died after recording the decision")
        return answer

    json_body = {"Content-Type": "application/json"}
    monkeypatch.setattr(BaseClient, "_make_api_call", dies_after_the_decision)
    with pytest.raises(InvocationCrashed):
        api.call("POST", path, body=b'{"decision": "approve"}', headers=json_body)
    monkeypatch.setattr(BaseClient, "_make_api_call", original)
    assert (aws.head(thread_id).step, aws.head(thread_id).status) == (1, "suspended")

    status, _, body = api.call("POST", path, body=b'{"decision": "reject"}', headers=json_body)
    assert status == 409, body
    assert json.loads(body)["error"]["decision"]["decision"] == "approve"
    assert aws.head(thread_id).step == 1

    status, _, body = api.call("POST", path, body=b'{"decision": "approve"}', headers=json_body)
    assert status == 200, body
    assert json.loads(body)["replayed"] is True
    assert json.loads(body)["decision"]["applied_step"] == 2
    aws.drain()
    assert aws.head(thread_id).status == "completed"
    assert [c.step for c in aws.chain(thread_id)] == [0, 1, 2, 3]
    assert len(aws.sent_emails()) == 1
