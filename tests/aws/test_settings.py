"""Settings are read from the environment once, validated, and name the variable at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.settings import AwsSettings, SettingsError

GOOD = {
    names.ENV_TABLE: "checkpoints",
    names.ENV_BUCKET: "payload-bucket",
    names.ENV_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/t.fifo",
    names.ENV_GRAPH: "examples.email_approval:graph",
}


def test_defaults_and_overrides() -> None:
    settings = AwsSettings.from_env({**GOOD, names.ENV_OFFLOAD_BYTES: "16384"})
    assert (settings.offload_bytes, settings.stale_seconds, settings.max_receives) == (
        16384,
        900,
        5,
    )
    assert settings.topic_arn is None
    assert settings.sweep_minutes == 5
    tuned = AwsSettings.from_env(
        {**GOOD, names.ENV_STALE_SECONDS: "360", names.ENV_SWEEP_MINUTES: "2"}
    )
    assert (tuned.stale_seconds, tuned.sweep_minutes) == (360, 2)
    with pytest.raises(ValidationError):
        settings.bucket = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({names.ENV_TABLE: ""}, names.ENV_TABLE),
        ({names.ENV_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/1/standard"}, "FIFO"),
        ({names.ENV_GRAPH: "examples/email_approval.py"}, names.ENV_GRAPH),
        ({names.ENV_OFFLOAD_BYTES: "lots"}, names.ENV_OFFLOAD_BYTES),
        ({names.ENV_TOPIC_ARN: "approvals"}, names.ENV_TOPIC_ARN),
        ({names.ENV_SWEEP_MINUTES: "0"}, names.ENV_SWEEP_MINUTES),
    ],
)
def test_bad_environment_names_the_variable(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        AwsSettings.from_env({**GOOD, **change})
