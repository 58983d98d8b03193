"""CDK entry point: `cdk synth` runs `python -m infra.app` (see cdk.json).

cdk-nag's AwsSolutions pack is registered as a validation plugin, so synthesis fails on any
finding that is neither fixed nor acknowledged (with a reason) next to the resource concerned.
Tests build the app through `build_app` too, so they check exactly what `cdk synth` checks.

Example:
    >>> from infra.app import build_app
    >>> app, stack = build_app()
    >>> stack.stack_name
    'DurableGraph'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import DurableGraphStack, StackConfig

__all__ = ["FEATURE_FLAGS", "STACK_ID", "build_app", "main"]

STACK_ID = "DurableGraph"

# CDK feature flags this app relies on, applied whether or not the CLI supplies cdk.json's
# context (CLI context still wins). Server access logs delivered through a bucket policy let the
# log bucket disable ACLs like every other bucket here.
FEATURE_FLAGS: Mapping[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(context: Mapping[str, Any] | None = None) -> tuple[App, DurableGraphStack]:
    """Create the app, its one stack and the cdk-nag checks.

    Args:
        context: CDK context values (`graph`, `offload_bytes`, `stale_seconds`,
            `approval_email`, `stack_name`); the CLI passes its own through the environment.
    """
    app = App(context={**FEATURE_FLAGS, **(context or {})})
    stack_name = app.node.try_get_context("stack_name")
    stack = DurableGraphStack(
        app, str(stack_name or STACK_ID), config=StackConfig.from_context(app.node)
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    """Synthesise the cloud assembly into the CLI's output folder."""
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
