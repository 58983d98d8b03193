"""The Lambda functions' configuration: environment variables parsed into a frozen model.

Parsed once, at cold start (the first call of `factory.runtime()`), so a missing or malformed
variable fails the first invocation loudly with the variable's name, instead of a `KeyError`
deep inside a node hours later. The environment keys come from `names.py`, which the CDK stack
uses to set them.

Example:
    >>> from durable_graph.backends.aws.settings import AwsSettings
    >>> settings = AwsSettings.from_env({
    ...     "DURABLE_GRAPH_TABLE": "checkpoints",
    ...     "DURABLE_GRAPH_BUCKET": "payloads",
    ...     "DURABLE_GRAPH_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/t.fifo",
    ...     "DURABLE_GRAPH_GRAPH": "examples.email_approval:graph",
    ... })
    >>> settings.offload_bytes
    8192
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from durable_graph.backends.aws import names
from durable_graph.mail import check_address
from durable_graph.payloads import DEFAULT_OFFLOAD_BYTES

# field name → environment key; the single mapping both parsing and error messages use.
ENV_KEYS: dict[str, str] = {
    "table_name": names.ENV_TABLE,
    "bucket": names.ENV_BUCKET,
    "queue_url": names.ENV_QUEUE_URL,
    "dlq_url": names.ENV_DLQ_URL,
    "topic_arn": names.ENV_TOPIC_ARN,
    "graph": names.ENV_GRAPH,
    "offload_bytes": names.ENV_OFFLOAD_BYTES,
    "stale_seconds": names.ENV_STALE_SECONDS,
    "sweep_minutes": names.ENV_SWEEP_MINUTES,
    "gc_grace_seconds": names.ENV_GC_GRACE_SECONDS,
    "max_receives": names.ENV_MAX_RECEIVES,
    "ledger_key_id": names.ENV_LEDGER_KEY_ID,
    "data_key_id": names.OPERATOR_ENV_DATA_KEY_ID,
    "mail_from": names.ENV_MAIL_FROM,
    "payload_deletes": names.GRANT_ENV_PAYLOAD_DELETES,
}


class SettingsError(ValueError):
    """The environment does not describe a usable deployment; names the variable at fault."""


Settings = TypeVar("Settings", bound=BaseModel)


def settings_from_env(
    model: type[Settings], keys: Mapping[str, str], environ: Mapping[str, str] | None, whose: str
) -> Settings:
    """`model` from the variables of `environ` (default: the process environment) that `keys`
    names (field -> variable), an empty one as unset. A missing or malformed one is a
    `SettingsError` naming each variable at fault and why (`whose` environment it is)."""
    source = os.environ if environ is None else environ
    raw = {field: source[key] for field, key in keys.items() if source.get(key)}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{keys.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        ]
        raise SettingsError(f"invalid {whose} environment: " + "; ".join(problems)) from None


class AwsSettings(BaseModel):
    """Where the AWS backend's resources are and how the runtime behaves.

    Attributes:
        table_name: DynamoDB table of checkpoints, thread records and CAS records.
        bucket: S3 bucket of content-addressed payloads.
        queue_url: SQS FIFO queue of transitions.
        dlq_url: its dead-letter queue (the sweeper reports what is parked there).
        topic_arn: SNS topic for approval notifications (none: notifications are only logged).
        graph: import path of the compiled graph the functions run.
        offload_bytes: strings above this size go to S3 (see `factory.OFFLOAD_REASONING`).
        stale_seconds: a running thread whose head has not moved for this long is re-driven
            (the sweeper's window; keep it above SQS's five-minute deduplication window).
        sweep_minutes: how often the sweeper runs (the stack's schedule, set beside the window
            so a function's environment tells how soon a stranded thread is noticed).
        gc_grace_seconds: the payload collector's grace (the sweeper's `gc` job): objects put
            less than this long ago are left (a step may be about to commit a record naming
            them). At least 15 minutes, a Lambda invocation's longest life.
        max_receives: the queue's redrive `maxReceiveCount`; on the last receive a failing task
            fails its thread with the reason before SQS parks the message in the DLQ.
        data_key_id: symmetric KMS key that wraps each thread's data key: values are stored
            encrypted (`durable_graph.keys`, KMS envelope encryption); none: in the clear.
        ledger_key_id: KMS key (ECC_NIST_P256) that signs chain heads when a thread suspends,
            completes or fails (none: heads are not signed).
        mail_from: the address nodes' emails are sent from through SES (`ctx.mailer`); it must
            belong to a verified SES identity, the only one the stack lets the functions send
            from (none: a node that sends mail fails its thread with `mailer_missing`).
        payload_deletes: whether the function's role may delete payload objects (set by the
            stack with the grant); only then does it delete the chunks of a step that lost
            its conditional append (`durable_graph.orphans`), else it leaves them to the
            sweeper (`durable_graph.leftovers`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    bucket: str = Field(min_length=3, max_length=63)
    queue_url: str
    dlq_url: str | None = None
    topic_arn: str | None = None
    graph: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    offload_bytes: int = Field(default=DEFAULT_OFFLOAD_BYTES, ge=256, le=300 * 1024)
    stale_seconds: int = Field(default=900, ge=1)
    sweep_minutes: int = Field(default=5, ge=1, le=1440)
    gc_grace_seconds: int = Field(default=3600, ge=900)
    max_receives: int = Field(default=5, ge=1, le=1000)
    ledger_key_id: str | None = None
    data_key_id: str | None = None
    mail_from: str | None = None
    payload_deletes: bool = False

    @field_validator("queue_url", "dlq_url")
    @classmethod
    def _fifo_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be a queue URL (https://sqs.<region>.amazonaws.com/...)")
        if not value.endswith(".fifo"):
            raise ValueError("must name a FIFO queue (ending in .fifo)")
        return value

    @field_validator("topic_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("arn:"):
            raise ValueError("must be an SNS topic ARN (arn:aws:sns:...)")
        return value

    @field_validator("mail_from")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsSettings:
        """Read the settings from `environ` (default: the process environment)."""
        return settings_from_env(cls, ENV_KEYS, environ, "durable-graph")
