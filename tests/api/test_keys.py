"""The AWS key providers on moto: Secrets Manager and SSM versions as key ids (rotation)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from moto import mock_aws

from durable_graph.api.keys import (
    SecretsManagerKeys,
    SecretsManagerSecrets,
    SsmParameterKeys,
    SsmParameterSecrets,
)
from durable_graph.api.tokens import mint, open_token
from tests.aws.resources import session


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield


def token(keys: SecretsManagerKeys | SsmParameterKeys) -> str:
    value, _ = mint(
        keys,
        thread_id="t",
        step=1,
        node="n",
        decisions=("approve",),
        expires_at=2_000_000_000,
        subject="s",
    )
    return value


def test_secrets_manager_rotation(moto: None) -> None:
    """Given a signing key in Secrets Manager, and a token signed with it
    When the secret is rotated (a new AWSCURRENT version)
    Then new tokens carry the new version id, and the old token still opens (AWSPREVIOUS)."""
    sm = session().client("secretsmanager")
    arn = sm.create_secret(Name="k", SecretString=secrets.token_urlsafe(48))["ARN"]
    keys = SecretsManagerKeys(sm, arn, ttl=0)
    old = token(keys)
    first = keys.current()[0]
    sm.put_secret_value(SecretId=arn, SecretString=secrets.token_urlsafe(48))
    assert keys.current()[0] != first
    assert open_token(old, keys).kid == first
    assert open_token(token(keys), keys).kid == keys.current()[0]


def test_ssm_parameter_versions_are_key_ids(moto: None) -> None:
    """Given a SecureString parameter holding the key, and a token signed with version 1
    When the parameter is overwritten (version 2)
    Then new tokens use version 2 and the version-1 token still opens."""
    ssm = session().client("ssm")
    ssm.put_parameter(Name="/dg/key", Value=secrets.token_urlsafe(48), Type="SecureString")
    keys = SsmParameterKeys(ssm, "/dg/key", ttl=0)
    old = token(keys)
    ssm.put_parameter(
        Name="/dg/key", Value=secrets.token_urlsafe(48), Type="SecureString", Overwrite=True
    )
    assert keys.current()[0] == "2"
    assert open_token(old, keys).kid == "1"


def test_webhook_secrets_include_the_previous_version(moto: None) -> None:
    """Given a webhook secret rotated once, in Secrets Manager and in SSM
    When the accepted secrets are listed
    Then both the current and the previous value are accepted, current first."""
    sm = session().client("secretsmanager")
    arn = sm.create_secret(Name="w", SecretString="whsec_" + "A" * 44)["ARN"]
    sm.put_secret_value(SecretId=arn, SecretString="whsec_" + "B" * 44)
    assert list(SecretsManagerSecrets(sm, arn).secrets()) == [
        "whsec_" + "B" * 44,
        "whsec_" + "A" * 44,
    ]
    ssm = session().client("ssm")
    ssm.put_parameter(Name="/dg/w", Value="whsec_" + "C" * 44, Type="SecureString")
    ssm.put_parameter(Name="/dg/w", Value="whsec_" + "D" * 44, Type="SecureString", Overwrite=True)
    assert list(SsmParameterSecrets(ssm, "/dg/w").secrets()) == [
        "whsec_" + "D" * 44,
        "whsec_" + "C" * 44,
    ]
