"""The Lambda functions in the synthesised stack: runtime, architecture, layer, and the
environment every one is given (from `names` and the context's settings).
"""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.components.api import STAGE_NAME
from infra.components.functions import SPECS, FunctionSpec
from infra.components.queueing import MAX_RECEIVE_COUNT
from infra.components.signing import LEDGER_KEY_ENV
from infra.stack import DEFAULT_GRAPH, StackConfig
from tests.infra.template_queries import bucket, function_of, logical_id, queue

# Every function's environment; the explorer's sign-in keys are the api function's alone
# (test_explorer_auth.py).
ENV_KEYS = sorted(
    value
    for key, value in vars(names).items()
    if key.startswith("ENV_") and not key.startswith("ENV_EXPLORER_")
)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_function_runs_python_3_12_on_arm64_with_the_shared_layer(
    template: Template, spec: FunctionSpec
) -> None:
    layer_id = logical_id(template, "AWS::Lambda::LayerVersion")

    _, function = function_of(template, spec)
    properties = function["Properties"]

    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == f"{spec.folder}.handler.handler"
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Timeout"] == spec.timeout_seconds


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.folder)
def test_function_environment_sets_every_names_env_key(
    template: Template, spec: FunctionSpec
) -> None:
    table_id = logical_id(template, "AWS::DynamoDB::Table")
    payloads_id, _ = bucket(template, "Payloads")
    transitions_id, _ = queue(template, "Transitions")
    dlq_id, _ = queue(template, "DeadLetters")
    topic_id = logical_id(template, "AWS::SNS::Topic")
    api_id = logical_id(template, "AWS::ApiGateway::RestApi")

    _, function = function_of(template, spec)
    variables = function["Properties"]["Environment"]["Variables"]

    assert set(ENV_KEYS) <= set(variables)
    assert variables[names.ENV_TABLE] == {"Ref": table_id}
    assert variables[names.ENV_BUCKET] == {"Ref": payloads_id}
    assert variables[names.ENV_QUEUE_URL] == {"Ref": transitions_id}
    assert variables[names.ENV_DLQ_URL] == {"Ref": dlq_id}
    assert variables[names.ENV_TOPIC_ARN] == {"Ref": topic_id}
    assert variables[names.ENV_GRAPH] == DEFAULT_GRAPH
    assert variables[names.ENV_OFFLOAD_BYTES] == "8192"
    assert variables[names.ENV_STALE_SECONDS] == "360"
    assert variables[names.ENV_SWEEP_MINUTES] == "2"
    assert variables[names.ENV_MAX_RECEIVES] == str(MAX_RECEIVE_COUNT)
    assert variables[names.ENV_SIGNING_KEY_PARAM]["Ref"].startswith("SigningApprovalSigningKey")
    assert variables[names.ENV_WEBHOOK_SECRET_PARAM]["Ref"].startswith("SigningWebhookSecret")
    assert variables[LEDGER_KEY_ENV]["Fn::GetAtt"][0].startswith("SigningLedgerKey")
    url_parts = variables[names.ENV_PUBLIC_BASE_URL]["Fn::Join"][1]
    assert url_parts[0] == "https://"
    assert url_parts[1] == {"Ref": api_id}
    assert url_parts[-1] == f"/{STAGE_NAME}"


def test_context_overrides_the_defaults() -> None:
    app = App(context={"graph": "examples.document_pipeline:graph", "stale_seconds": "60"})

    config = StackConfig.from_context(app.node)

    assert config.graph == "examples.document_pipeline:graph"
    assert config.stale_seconds == 60
    assert config.offload_bytes == 8192
    assert config.approval_email is None
