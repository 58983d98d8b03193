"""Keys and secrets in the synthesised stack: the encrypted approvals topic, the ledger's
signing key, generated HMAC secrets and the webhook secret's `whsec_` value.
"""

from __future__ import annotations

from aws_cdk.assertions import Template

from infra.components.functions import API
from tests.infra.template_queries import as_list, function_of, only, role_statements


def test_approvals_topic_is_encrypted(template: Template) -> None:
    _, topic = only(template.find_resources("AWS::SNS::Topic"))

    assert "KmsMasterKeyId" in topic["Properties"]


def test_ledger_key_is_an_asymmetric_signing_key(template: Template) -> None:
    _, key = only(template.find_resources("AWS::KMS::Key"))

    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"


def test_hmac_secrets_are_generated_not_written(template: Template) -> None:
    secrets = template.find_resources("AWS::SecretsManager::Secret")

    assert len(secrets) == 2
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


def test_the_webhook_secret_is_set_in_whsec_form_by_a_custom_resource(template: Template) -> None:
    """The stack's webhook secret is given a `whsec_` value by a custom resource whose function
    may only put a value into that one secret; the api function waits for it."""
    secret_id, _ = only(
        {
            k: v
            for k, v in template.find_resources("AWS::SecretsManager::Secret").items()
            if k.startswith("SigningWebhookSecret")
        }
    )
    custom_id, custom = only(template.find_resources("Custom::WebhookSecretValue"))
    assert custom["Properties"]["SecretId"] == {"Ref": secret_id}
    setter_id = custom["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    setter = template.find_resources("AWS::Lambda::Function")[setter_id]
    assert setter["Properties"]["Handler"] == "webhook_secret.handler.handler"

    statements = role_statements(template, setter["Properties"]["Role"]["Fn::GetAtt"][0])
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {"secretsmanager:PutSecretValue", "logs:CreateLogStream", "logs:PutLogEvents"}
    [put] = [s for s in statements if s["Action"] == "secretsmanager:PutSecretValue"]
    assert put["Resource"] == {"Ref": secret_id}

    api_id, _ = function_of(template, API)
    assert custom_id in template.to_json()["Resources"][api_id]["DependsOn"]
