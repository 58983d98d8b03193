"""Keys: the HMAC secrets for approval links and webhooks, and the KMS key for chain heads.

The HMAC key and the webhook secret are Secrets Manager secrets generated at deploy time, so no
key material passes through a template, a shell or a repository. The webhook secret's generated
value is a placeholder: `infra.components.webhook_secret` replaces it with a Standard Webhooks
`whsec_<base64>` secret during the same deployment. (CloudFormation cannot create
SSM SecureString parameters, which rules those out for generated keys.)

Chain heads are signed with an asymmetric ECC_NIST_P256 KMS key rather than an HMAC key: anyone
holding the public key can verify an exported ledger offline, and nobody, including whoever can
write to the table, can produce a signature without calling KMS (which CloudTrail records).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from durable_graph.backends.aws import names
from infra.components.nag import acknowledge

__all__ = ["DATA_KEY_ACTIONS", "LEDGER_KEY_ACTIONS", "LEDGER_KEY_ENV", "Signing"]

LEDGER_KEY_ENV = names.ENV_LEDGER_KEY_ID
LEDGER_KEY_ACTIONS = ("kms:Sign", "kms:Verify", "kms:GetPublicKey")
# Envelope encryption at rest: a new thread's data key is generated wrapped, and unwrapped once
# per warm container (`durable_graph.backends.aws.kms_keys`). Nothing else: no Encrypt, no
# ReEncrypt, no key administration.
DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")

_NO_ROTATION = (
    "Rotating this key invalidates every outstanding signed link or webhook signature; it is "
    "rotated by an operator together with the clients, not on a schedule."
)


def _generated_secret(
    scope: Construct, construct_id: str, description: str
) -> secretsmanager.Secret:
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=64, exclude_punctuation=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge(secret, "SMG4", _NO_ROTATION)
    return secret


class Signing(Construct):
    """Secrets and keys.

    Attributes:
        approval_signing_key: HMAC-SHA256 key for approval-link tokens.
        webhook_secret: shared secret that webhook callers sign `POST /threads` with.
        ledger_key: KMS signing key for chain heads.
        data_key: symmetric KMS key wrapping per-thread data keys, when encryption at rest
            is on (`enable_encryption_at_rest`); None otherwise.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.approval_signing_key = _generated_secret(
            self, "ApprovalSigningKey", "durable-graph: HMAC-SHA256 key for approval-link tokens"
        )
        self.webhook_secret = _generated_secret(
            self, "WebhookSecret", "durable-graph: shared secret for signed webhook starts"
        )
        self.ledger_key = kms.Key(
            self,
            "LedgerKey",
            description="durable-graph: signs ledger chain heads",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            # Losing the key would make every past signature unverifiable by KMS.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.data_key: kms.Key | None = None

    def enable_encryption_at_rest(self) -> kms.Key:
        """Create the key-encryption key. Rotation is on (KMS keeps old key material, so data
        keys wrapped before a rotation still unwrap); RETAIN, because deleting it would destroy
        every thread's values at once, which is an erasure nobody signed."""
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="durable-graph: wraps each thread's data key (encryption at rest)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        return self.data_key

    def grant_data_keys(self, function: lambda_.Function) -> None:
        """Seal and open values: every function that writes or reads a thread's values. A no-op
        when encryption at rest is off."""
        if self.data_key is not None:
            self.data_key.grant(function, *DATA_KEY_ACTIONS)

    def grant_sign(self, function: lambda_.Function) -> None:
        """Sign chain heads: the engine signs whenever a commit settles a thread (suspended,
        completed, failed), so every function that commits such a step needs this. The public
        key names the key in each signature and lets a signature be checked right after."""
        self.ledger_key.grant(function, *LEDGER_KEY_ACTIONS)
