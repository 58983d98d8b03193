"""CDK entry point: `cdk synth` runs `python -m infra.app` (see cdk.json).

cdk-nag's AwsSolutions pack is registered as a validation plugin, so synthesis fails on any
finding that is neither fixed nor acknowledged (with a reason) next to the resource concerned.
Tests build the app through `build_app` too, so they check exactly what `cdk synth` checks.

`cdk.json`'s context (the feature flags aws-cdk-lib recommends for new projects, every one of
them, checked by `tests/infra/test_feature_flags.py`) is applied here as well, so the app is the
same whether the CDK CLI runs it (and passes that context) or `python -m infra.app` does.

Example:
    >>> from infra.app import build_app
    >>> app, stack = build_app({"aws:cdk:bundling-stacks": []})  # skip building the layer
    >>> stack.stack_name
    'DurableGraph'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.package import LayerBundler
from infra.stack import REPO_ROOT, DurableGraphStack, StackConfig

__all__ = ["STACK_ID", "build_app", "cdk_json_context", "main"]

STACK_ID = "DurableGraph"


def cdk_json_context() -> dict[str, Any]:
    """The `context` of the repository's cdk.json: the feature flags, one source for all."""
    document = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    context: dict[str, Any] = document.get("context", {})
    return context


def build_app(
    context: Mapping[str, Any] | None = None, *, layer_bundler: LayerBundler | None = None
) -> tuple[App, DurableGraphStack]:
    """Create the app, its one stack and the cdk-nag checks.

    Args:
        context: CDK context values (`graph`, `offload_bytes`, `stale_seconds`,
            `approval_email`, `mail_from`, `mail_identity`, `signin_domain_prefix`,
            `stack_name`), over cdk.json's;
            the CLI passes its own through the environment. `{"aws:cdk:bundling-stacks": []}`
            skips building the layer (tests).
        layer_bundler: builds the layer at synthesis (default: `infra.package.LayerBundler`).
    """
    app = App(context={**cdk_json_context(), **(context or {})})
    stack_name = app.node.try_get_context("stack_name")
    stack = DurableGraphStack(
        app,
        str(stack_name or STACK_ID),
        config=StackConfig.from_context(app.node),
        layer_bundler=layer_bundler,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    """Synthesise the cloud assembly into the CLI's output folder."""
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
