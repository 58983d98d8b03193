"""The five Lambda functions and the library layer they share.

All five use one code asset, the whole `functions/` folder, with handlers such as
`worker.handler.handler`: the entry points are thin (parse, call the library, shape the
response), so shipping them together costs nothing and keeps one asset hash per deploy.
The library itself (`durable_graph`, the example graphs and their runtime dependencies) is a
layer that synthesis builds (`layer_code`: CDK local bundling with `infra.package.LayerBundler`,
no Docker), so whatever `cdk synth` or `cdk deploy` produces has its code under `python/`, where
Lambda imports it from; a failed build fails the synthesis.

Every function gets its own role with no AWS managed policy: logging is granted on the
function's own log group, everything else by the owning construct's `grant_*` methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aws_cdk import AssetHashType, BundlingOptions, Duration, ILocalBundling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.nag import acknowledge, acknowledge_on_role
from infra.package import LayerBundler, layer_hash

__all__ = [
    "API",
    "ARCHITECTURE",
    "DEAD_LETTERS",
    "RUNTIME",
    "S3_TRIGGER",
    "SPECS",
    "SWEEPER",
    "WORKER",
    "FunctionSpec",
    "Functions",
    "layer_code",
]

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "DurableGraph"
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info", "**/.mypy_cache", "**/tests"]


def layer_code(root: Path, bundler: LayerBundler | None = None) -> lambda_.Code:
    """The layer asset, built at synthesis by `bundler` (default: `LayerBundler(root)`).

    Keyed by `layer_hash(root)` rather than by the bundled output, so an unchanged layer is not
    rebuilt (and synthesis with bundling skipped, as in tests, still names the same asset).
    `image` is required by CDK but only used if a local bundler declines, which ours never does.
    """
    return lambda_.Code.from_asset(
        str(root / "shared"),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_hash(root),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            # jsii calls `try_bundle(output_dir, options)` positionally, which the generated
            # stub (keyword-only options) cannot express: the protocol is met at run time.
            local=cast(ILocalBundling, bundler or LayerBundler(root)),
        ),
    )


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between the functions: the folder, the size and the time limit."""

    folder: str
    construct_id: str
    description: str
    timeout_seconds: int
    memory_mb: int

    @property
    def handler(self) -> str:
        """Handler path relative to the `functions/` asset root."""
        return f"{self.folder}.handler.handler"

    @property
    def timeout(self) -> Duration:
        """The function timeout as a CDK duration."""
        return Duration.seconds(self.timeout_seconds)


WORKER = FunctionSpec(
    "worker",
    "Worker",
    "durable-graph: runs one graph node per transition message and commits the checkpoint",
    # Nodes call LLMs and external APIs; two minutes leaves room without hiding hung calls.
    timeout_seconds=120,
    memory_mb=1024,
)
API = FunctionSpec(
    "api",
    "Api",
    "durable-graph: HTTP API for threads, history, resume and approvals",
    # API Gateway gives up after 29 s; running longer would only burn compute.
    timeout_seconds=29,
    memory_mb=512,
)
S3_TRIGGER = FunctionSpec(
    "s3_trigger",
    "S3Trigger",
    "durable-graph: starts one run per uploaded object version",
    timeout_seconds=60,
    memory_mb=256,
)
SWEEPER = FunctionSpec(
    "sweeper",
    "Sweeper",
    "durable-graph: re-sends tasks of stalled threads and reports what sits in the DLQ",
    timeout_seconds=300,
    memory_mb=512,
)
DEAD_LETTERS = FunctionSpec(
    "dlq",
    "DeadLetters",
    "durable-graph: records every dead-lettered transition on its thread (re-drive or fail)",
    # A few reads and one write or send per record; a batch of ten is done in seconds.
    timeout_seconds=60,
    memory_mb=512,
)
SPECS = (WORKER, API, S3_TRIGGER, SWEEPER, DEAD_LETTERS)


class Functions(Construct):
    """The worker, api, s3_trigger, sweeper and dlq functions.

    Attributes:
        layer: the shared library layer.
        code: the code asset (the whole `functions/` folder).
        worker, api, s3_trigger, sweeper, dead_letters: the functions, one per `FunctionSpec`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        layer: lambda_.Code,
        environment: Mapping[str, str],
        failed_starts: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Library",
            code=layer,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="durable-graph library, example graphs and runtime dependencies",
        )
        self.code = code = lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDES)
        self.worker = self._function(WORKER, code, environment)
        self.api = self._function(API, code, environment)
        # S3 invokes asynchronously; a start that fails every retry lands in `failed_starts`
        # instead of vanishing (the start is idempotent, so it can simply be redriven).
        self.s3_trigger = self._function(S3_TRIGGER, code, environment, dlq=failed_starts)
        self.sweeper = self._function(SWEEPER, code, environment)
        self.dead_letters = self._function(DEAD_LETTERS, code, environment)

    @property
    def all(self) -> tuple[lambda_.Function, ...]:
        """Every function, in `SPECS` order."""
        return (self.worker, self.api, self.s3_trigger, self.sweeper, self.dead_letters)

    def add_environment(self, key: str, value: str) -> None:
        """Set one environment variable on every function (used for values known late)."""
        for function in self.all:
            function.add_environment(key, value)

    def _function(
        self,
        spec: FunctionSpec,
        code: lambda_.Code,
        environment: Mapping[str, str],
        dlq: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        role = iam.Role(
            self,
            f"{spec.construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"durable-graph {spec.folder} function",
        )
        log_group = logs.LogGroup(
            self, f"{spec.construct_id}Logs", retention=logs.RetentionDays.ONE_MONTH
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            spec.construct_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=code,
            layers=[self.layer],
            role=role,
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": spec.folder,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            dead_letter_queue=dlq,
        )
        acknowledge(
            function,
            "L1",
            "Python 3.12 is the runtime infra/package.py builds the layer's binary wheels for; "
            "moving to a newer one is a deliberate change of both.",
        )
        acknowledge_on_role(
            function,
            "IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions.",
        )
        return function
