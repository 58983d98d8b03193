"""Encryption at rest in the synthesised stack: off unless asked; asked, one rotated data key
that every function may use, and only that key.
"""

from __future__ import annotations

from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.components.functions import SPECS
from tests.infra.template_queries import (
    MAIL_FROM,
    NO_BUNDLING,
    actions_of,
    as_list,
    function_of,
    only,
    statements_of,
)

DATA_KEY_USE = {"kms:GenerateDataKey", "kms:Decrypt"}


def test_encryption_at_rest_is_off_unless_asked(template: Template) -> None:
    """Without `-c encrypt_at_rest=true` no data key exists, no function may use one, and no
    function is told of one (values are stored as they are, as before)."""
    for spec in SPECS:
        _, function = function_of(template, spec)
        environment = function["Properties"]["Environment"]["Variables"]
        assert names.OPERATOR_ENV_DATA_KEY_ID not in environment
        assert not DATA_KEY_USE & actions_of(template, spec)
    assert "DataKeyArn" not in template.find_outputs("*")


def test_encryption_at_rest_creates_a_rotated_data_key_every_function_may_use_alone() -> None:
    """`-c encrypt_at_rest=true`: one symmetric KMS key, rotated and retained, named in every
    function's environment and the stack's outputs (the CLI's aws:// URI reads it), and each
    function may generate and unwrap data keys with that key only."""
    app, stack = build_app({**NO_BUNDLING, "mail_from": MAIL_FROM, "encrypt_at_rest": "true"})
    assert AwsSolutionsChecks().validate_scope(app).violations == []
    template = Template.from_stack(stack)
    keys = template.find_resources("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}})
    data_key_id, data_key = only(keys)

    assert "KeySpec" not in data_key["Properties"]  # symmetric (the default spec)
    assert data_key["DeletionPolicy"] == "Retain"
    arn = {"Fn::GetAtt": [data_key_id, "Arn"]}
    assert template.find_outputs("DataKeyArn")["DataKeyArn"]["Value"] == arn
    for spec in SPECS:
        _, function = function_of(template, spec)
        assert (
            function["Properties"]["Environment"]["Variables"][names.OPERATOR_ENV_DATA_KEY_ID]
            == arn
        )
        uses = [
            statement
            for statement in statements_of(template, spec)
            if DATA_KEY_USE & set(as_list(statement["Action"]))
        ]
        assert uses, f"{spec.folder} may not use the data key"
        for statement in uses:
            assert set(as_list(statement["Action"])) == DATA_KEY_USE
            assert statement["Resource"] == arn
