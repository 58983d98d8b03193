"""The durable-graph stack: constructs per concern, wired together and granted least privilege.

The wiring below is the whole permission model; read it as a table of who may do what:

| function   | table | payloads    | uploads | queue      | DLQ  | topic   | secrets | KMS  | SES  |
|------------|-------|-------------|---------|------------|------|---------|---------|------|------|
| worker     | r/w   | r/w         | read    | recv, send | send | publish | signing | sign | send |
| api        | r/w   | r/w, delete | read    | send       | -    | publish | both    | sign | -    |
| s3_trigger | r/w   | r/w         | read    | send       | -    | -       | -       | -    | -    |
| sweeper    | r/w*  | read, del.  | -       | send       | recv | -       | -       | sign | -    |
| dlq        | r/w   | read        | -       | send       | recv | -       | -       | sign | -    |

"r/w" on the table never includes deleting; "r/w" on payloads is read and put under the
content-addressed prefix only (see `infra.components.storage`). "delete" ("del.") on payloads
is erasure's: the API's `POST /threads/{id}/erase` (IAM only) and the sweeper's scheduled
retention job destroy an erased value's objects, every version, under that prefix; the sweeper
also deletes the chunks of lost appends that the functions without a payload delete left it
(`durable_graph.leftovers`), and, on its `gc` schedule, every payload object no thread needs
(`durable_graph.payload_gc`: it lists the payload prefix, with `ListBucket`). Nobody may
delete a table item (erasure rewrites a committed row in place, conditionally, with `PutItem`)
but the sweeper a leftover (*: `DeleteItem` held to the leftovers partition by
`dynamodb:LeadingKeys`).
"send" on SES is `SendEmail` from `mail_from` on the one configured identity, and only when
`-c mail_from=...` is given (see `infra.components.mail`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct, Node

from durable_graph.backends.aws import names
from durable_graph.mail import check_address
from infra.components import Api, Functions, Notifications, Queueing, Signing, Storage
from infra.components.explorer_auth import ExplorerAuth
from infra.components.functions import DEAD_LETTERS, WORKER, layer_code
from infra.components.mail import grant_send_email
from infra.components.nag import acknowledge
from infra.components.queueing import MAX_RECEIVE_COUNT
from infra.components.signing import LEDGER_KEY_ENV
from infra.components.webhook_secret import WebhookSecretValue
from infra.package import LayerBundler

__all__ = ["DEFAULT_GRAPH", "REPO_ROOT", "DurableGraphStack", "StackConfig"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GRAPH = "examples.email_approval:graph"
WORKER_BATCH_SIZE = 10  # the largest batch a FIFO event source accepts


@dataclass(frozen=True)
class StackConfig:
    """Deployment-time settings, read from CDK context (`cdk deploy -c graph=...`).

    Attributes:
        root: repository root holding `functions/`, `shared/` and `examples/`.
        graph: import path of the graph the worker runs, `module:attribute`.
        offload_bytes: string and bytes values above this size are stored as payloads.
        stale_seconds: the sweeper's window: a running thread whose head has not moved for
            this long is re-driven. Six minutes: above SQS's five-minute deduplication window
            (a re-send inside it could be dropped as a duplicate of the lost original).
        sweep_minutes: the sweeper's schedule. With the window, a stranded thread is noticed
            within `stale_seconds + sweep_minutes` (eight minutes by default).
        retention_hours: how often the sweeper runs the retention job (`durable-graph
            retention run`: erase what each graph's `Retention` no longer allows). Daily by
            default: a policy is counted in days, and a run reads every settled thread.
        gc_hours: how often the sweeper runs the payload collector (`durable-graph gc`: delete
            the payload objects no thread needs, such as what a worker killed mid-step left).
            Daily by default: it reads every thread and lists the whole bucket.
        gc_grace_minutes: the collector leaves objects put less than this long ago (a step
            may be about to commit a record naming them); at least 15, a Lambda's longest life.
        approval_email: optional address subscribed to approval notifications.
        mail_from: the address nodes' emails are sent from through SES (`ctx.mailer`); none:
            the functions may not send email, and a node that tries fails its thread.
        mail_identity: the verified SES identity `mail_from` belongs to (the address itself,
            or its domain); defaults to `mail_from`. The worker may send through it only.
        signin_domain_prefix: the explorer's hosted-UI domain prefix (unique in the region);
            default `<stack name>-<account id>`.
        encrypt_at_rest: create a symmetric KMS key that wraps each thread's data key, so
            values and payloads are stored AES-GCM sealed and erasing a thread destroys its
            key (`docs/record-format.md` §14). Off by default: it costs a `Decrypt` per thread
            per warm container and makes the stored bytes unreadable without KMS.
    """

    root: Path = REPO_ROOT
    graph: str = DEFAULT_GRAPH
    offload_bytes: int = 8192
    stale_seconds: int = 360
    sweep_minutes: int = 2
    retention_hours: int = 24
    gc_hours: int = 24
    gc_grace_minutes: int = 60
    approval_email: str | None = field(default=None)
    mail_from: str | None = None
    mail_identity: str | None = None
    signin_domain_prefix: str | None = None
    encrypt_at_rest: bool = False

    def __post_init__(self) -> None:
        if self.mail_from is not None:
            try:
                check_address(self.mail_from)
            except ValueError as exc:
                raise ValueError(f"-c mail_from: {exc}") from None
        if self.gc_grace_minutes < 15:
            raise ValueError("-c gc_grace_minutes must be at least 15 (a Lambda's longest life)")
        if self.mail_identity is not None and self.mail_from is None:
            raise ValueError("-c mail_identity needs -c mail_from (the address to send from)")
        if self.mail_identity is not None and not self.mail_from_matches(self.mail_identity):
            raise ValueError(
                f"-c mail_from={self.mail_from!r} is not an address of the SES identity "
                f"{self.mail_identity!r} (give the address itself or its domain)"
            )

    def mail_from_matches(self, identity: str) -> bool:
        """Whether `mail_from` is `identity` (an address) or an address of it (a domain)."""
        sender = self.mail_from or ""
        return sender == identity or sender.lower().endswith("@" + identity.lower())

    @classmethod
    def from_context(cls, node: Node, root: Path = REPO_ROOT) -> StackConfig:
        """Read the settings from context, defaulting to the values above."""

        def get(key: str, default: object) -> object:
            value = node.try_get_context(key)
            return default if value is None else value

        email = node.try_get_context("approval_email")
        mail_from = node.try_get_context("mail_from")
        mail_identity = node.try_get_context("mail_identity")
        prefix = node.try_get_context("signin_domain_prefix")
        return cls(
            root=root,
            graph=str(get("graph", DEFAULT_GRAPH)),
            offload_bytes=int(str(get("offload_bytes", cls.offload_bytes))),
            stale_seconds=int(str(get("stale_seconds", cls.stale_seconds))),
            sweep_minutes=int(str(get("sweep_minutes", cls.sweep_minutes))),
            retention_hours=int(str(get("retention_hours", cls.retention_hours))),
            gc_hours=int(str(get("gc_hours", cls.gc_hours))),
            gc_grace_minutes=int(str(get("gc_grace_minutes", cls.gc_grace_minutes))),
            approval_email=str(email) if email else None,
            mail_from=str(mail_from) if mail_from else None,
            mail_identity=str(mail_identity) if mail_identity else None,
            signin_domain_prefix=str(prefix) if prefix else None,
            encrypt_at_rest=str(get("encrypt_at_rest", "false")).lower() in ("true", "1", "yes"),
        )

    @property
    def functions_dir(self) -> Path:
        """The code asset shared by every function."""
        return self.root / "functions"


class DurableGraphStack(Stack):
    """Everything the serverless backend needs, in one stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig | None = None,
        layer_bundler: LayerBundler | None = None,
        description: str = "durable-graph: durable, auditable execution for AI agent graphs",
    ) -> None:
        super().__init__(scope, construct_id, description=description)
        config = config or StackConfig.from_context(self.node)

        storage = Storage(self, "Storage")
        queueing = Queueing(
            self,
            "Queueing",
            worker_timeout=WORKER.timeout,
            dead_letter_timeout=DEAD_LETTERS.timeout,
        )
        signing = Signing(self, "Signing")
        notifications = Notifications(self, "Notifications", approval_email=config.approval_email)
        functions = Functions(
            self,
            "Functions",
            code_dir=config.functions_dir,
            layer=layer_code(config.root, layer_bundler),
            environment={
                names.ENV_TABLE: storage.table.table_name,
                names.ENV_BUCKET: storage.payload_bucket.bucket_name,
                names.ENV_QUEUE_URL: queueing.transitions.queue_url,
                names.ENV_DLQ_URL: queueing.dead_letters.queue_url,
                names.ENV_TOPIC_ARN: notifications.approvals_topic.topic_arn,
                names.ENV_GRAPH: config.graph,
                names.ENV_OFFLOAD_BYTES: str(config.offload_bytes),
                names.ENV_STALE_SECONDS: str(config.stale_seconds),
                names.ENV_SWEEP_MINUTES: str(config.sweep_minutes),
                names.ENV_GC_GRACE_SECONDS: str(config.gc_grace_minutes * 60),
                # The worker tells a last attempt (record the failure) from a retry by this.
                names.ENV_MAX_RECEIVES: str(MAX_RECEIVE_COUNT),
                # Secret ARNs: GetSecretValue accepts them and they name the exact secret.
                names.ENV_SIGNING_KEY_PARAM: signing.approval_signing_key.secret_arn,
                names.ENV_WEBHOOK_SECRET_PARAM: signing.webhook_secret.secret_arn,
                LEDGER_KEY_ENV: signing.ledger_key.key_arn,
            },
            failed_starts=queueing.failed_starts,
        )
        if config.mail_from:
            functions.add_environment(names.ENV_MAIL_FROM, config.mail_from)
        if config.encrypt_at_rest:
            data_key = signing.enable_encryption_at_rest()
            functions.add_environment(names.OPERATOR_ENV_DATA_KEY_ID, data_key.key_arn)
        webhook_secret = WebhookSecretValue(
            self,
            "WebhookSecretValue",
            secret=signing.webhook_secret,
            code=functions.code,
            layer=functions.layer,
        )
        functions.api.node.add_dependency(webhook_secret.resource)  # never the placeholder
        api = Api(self, "Api", handler=functions.api)
        # The ledger explorer's pages, for the users of a Cognito pool (approval links excepted).
        explorer = ExplorerAuth(
            self,
            "Explorer",
            rest_api=api.rest_api,
            base_url=api.base_url,
            handler=functions.api,
            domain_prefix=config.signin_domain_prefix,
        )
        CfnOutput(self, "ExplorerUserPoolId", value=explorer.user_pool.user_pool_id)
        CfnOutput(self, "ExplorerClientId", value=explorer.client.user_pool_client_id)
        CfnOutput(self, "ExplorerUrl", value=f"{api.base_url}/explorer")
        # Approval links point at the API; every function may have to mint one.
        functions.add_environment(names.ENV_PUBLIC_BASE_URL, api.base_url)

        # --- worker: one node per message; partial batch failures retry only what failed. ---
        worker = functions.worker
        worker.add_event_source(
            event_sources.SqsEventSource(
                queueing.transitions,
                batch_size=WORKER_BATCH_SIZE,
                report_batch_item_failures=True,
            )
        )
        storage.grant_checkpoints_read(worker)
        storage.grant_checkpoints_write(worker)
        storage.grant_payloads_read(worker)
        storage.grant_payloads_write(worker)
        storage.grant_uploads_read(worker)
        if config.mail_from:  # nodes send email (ctx.mailer): SES, from this identity only
            grant_send_email(
                worker,
                identity=config.mail_identity or config.mail_from,
                mail_from=config.mail_from,
            )
        queueing.transitions.grant_send_messages(worker)
        queueing.dead_letters.grant_send_messages(worker)  # parks malformed bodies with a reason
        notifications.grant_publish(worker)
        signing.approval_signing_key.grant_read(worker)
        signing.grant_data_keys(worker)
        signing.grant_sign(worker)

        # --- api: starts, reads, resumes and approvals. ---
        storage.grant_checkpoints_read(functions.api)
        storage.grant_checkpoints_write(functions.api)
        storage.grant_payloads_read(functions.api)
        storage.grant_payloads_write(functions.api)
        storage.grant_payloads_delete(functions.api)  # POST /threads/{id}/erase (IAM only)
        storage.grant_uploads_read(functions.api)  # the item under review may be an upload
        queueing.transitions.grant_send_messages(functions.api)
        # A resume can settle in a new suspension (a second approval), announced from here.
        notifications.grant_publish(functions.api)
        signing.approval_signing_key.grant_read(functions.api)
        signing.webhook_secret.grant_read(functions.api)
        signing.grant_data_keys(functions.api)
        signing.grant_sign(functions.api)

        # --- s3_trigger: an uploaded object version starts exactly one run. ---
        s3_trigger = functions.s3_trigger
        storage.uploads_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(s3_trigger)
        )
        storage.grant_checkpoints_read(s3_trigger)
        storage.grant_checkpoints_write(s3_trigger)
        storage.grant_payloads_read(s3_trigger)
        storage.grant_payloads_write(s3_trigger)
        storage.grant_uploads_read(s3_trigger)
        queueing.transitions.grant_send_messages(s3_trigger)
        signing.grant_data_keys(s3_trigger)  # step 0 seals the uploaded input

        # --- sweeper: every `sweep_minutes`, re-drive stalled threads, report the DLQ, delete
        # lost appends' leftover chunks; every `retention_hours`, the retention job (the same
        # as `durable-graph retention run`); every `gc_hours`, the payload collector (the same
        # as `durable-graph gc`). ---
        sweeper = functions.sweeper
        events.Rule(
            self,
            "SweepSchedule",
            description="durable-graph: run the sweeper",
            schedule=events.Schedule.rate(Duration.minutes(config.sweep_minutes)),
            targets=[targets.LambdaFunction(sweeper)],
        )
        self._sweeper_job(
            sweeper,
            "RetentionSchedule",
            "durable-graph: erase values older than each graph's retention policy",
            Duration.hours(config.retention_hours),
            names.RETENTION_JOB,
        )
        self._sweeper_job(
            sweeper,
            "PayloadGcSchedule",
            "durable-graph: delete payload objects no thread needs any more",
            Duration.hours(config.gc_hours),
            names.GC_JOB,
        )
        storage.grant_checkpoints_read(sweeper)
        storage.grant_checkpoints_write(sweeper)
        storage.grant_payloads_read(sweeper)
        # Retention erases values and their objects; the collector lists the bucket (ListBucket,
        # ListBucketVersions under the prefix) and deletes what no thread needs.
        storage.grant_payloads_delete(sweeper)
        storage.grant_leftovers_forget(sweeper)  # the chunks of lost appends others left it
        queueing.transitions.grant_send_messages(sweeper)
        queueing.dead_letters.grant_consume_messages(sweeper)
        signing.grant_data_keys(sweeper)
        signing.grant_sign(sweeper)

        # --- dlq: every dead-lettered transition is re-driven once or fails its thread. ---
        dead_letters = functions.dead_letters
        dead_letters.add_event_source(
            event_sources.SqsEventSource(
                queueing.dead_letters,
                batch_size=WORKER_BATCH_SIZE,
                report_batch_item_failures=True,
            )
        )
        storage.grant_checkpoints_read(dead_letters)
        storage.grant_checkpoints_write(dead_letters)  # the failure checkpoint, re-drive records
        storage.grant_payloads_read(dead_letters)  # claim-checked bodies and offloaded state
        queueing.transitions.grant_send_messages(dead_letters)  # the re-drive
        signing.grant_data_keys(dead_letters)
        signing.grant_sign(dead_letters)  # a failed thread's chain head is signed

        self._acknowledge_bucket_notifications_handler()
        self._outputs(storage, queueing, signing, notifications, api)

    def _sweeper_job(
        self, sweeper: lambda_.IFunction, rule_id: str, description: str, every: Duration, job: str
    ) -> None:
        """A schedule that asks the sweeper for one of its jobs (`names.SWEEPER_JOB_KEY`)
        instead of a sweep; `functions/sweeper/handler.py` dispatches on it."""
        events.Rule(
            self,
            rule_id,
            description=description,
            schedule=events.Schedule.rate(every),
            targets=[
                targets.LambdaFunction(
                    sweeper,
                    event=events.RuleTargetInput.from_object({names.SWEEPER_JOB_KEY: job}),
                )
            ],
        )

    def _acknowledge_bucket_notifications_handler(self) -> None:
        """The singleton function CDK adds to configure S3 notifications is not ours to change."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK-managed custom resource that sets the uploads bucket's notifications.",
                )

    def _outputs(
        self,
        storage: Storage,
        queueing: Queueing,
        signing: Signing,
        notifications: Notifications,
        api: Api,
    ) -> None:
        """What operators and end-to-end tests need to find the deployed resources."""
        outputs = {
            "ApiUrl": api.rest_api.url,
            "TableName": storage.table.table_name,
            "PayloadBucketName": storage.payload_bucket.bucket_name,
            "UploadsBucketName": storage.uploads_bucket.bucket_name,
            "TransitionQueueUrl": queueing.transitions.queue_url,
            "DeadLetterQueueUrl": queueing.dead_letters.queue_url,
            "FailedStartsQueueUrl": queueing.failed_starts.queue_url,
            "ApprovalsTopicArn": notifications.approvals_topic.topic_arn,
            "LedgerKeyArn": signing.ledger_key.key_arn,
        }
        if signing.data_key is not None:  # the CLI's aws:// store URI reads it (locate.py)
            outputs["DataKeyArn"] = signing.data_key.key_arn
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
