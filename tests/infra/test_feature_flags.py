"""cdk.json sets every feature flag the installed aws-cdk-lib recommends for new projects.

The list is read from the aws-cdk-lib package itself (`recommended-feature-flags.json`, what
`cdk init` writes into a new project's cdk.json), so upgrading aws-cdk-lib makes this test name
the flags that appeared: review them and copy them into cdk.json.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk

from infra.app import build_app, cdk_json_context
from infra.stack import REPO_ROOT


def recommended_flags() -> dict[str, Any]:
    """The recommended flags shipped inside the installed aws-cdk-lib (its jsii bundle)."""
    [bundle] = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, Any] = json.load(member)
    return flags


def test_cdk_json_sets_every_recommended_flag_to_its_recommended_value() -> None:
    recommended = recommended_flags()
    context = cdk_json_context()

    assert len(recommended) > 50  # the list was found and read
    missing = sorted(set(recommended) - set(context))
    assert missing == [], f"add to cdk.json's context: {missing}"
    differing = {k: context[k] for k in recommended if context[k] != recommended[k]}
    assert differing == {}


def test_the_app_synthesises_with_cdk_json_context_applied() -> None:
    """`build_app` applies cdk.json's context itself (the same app with or without the CLI)."""
    app, _ = build_app({"aws:cdk:bundling-stacks": []})
    flag = "@aws-cdk/aws-lambda:recognizeLayerVersion"
    assert app.node.try_get_context(flag) is True
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["context"][flag] is True
