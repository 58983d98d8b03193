"""cdk-nag over the synthesised stack: no unacknowledged finding, and one fails the synthesis."""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from infra.app import build_app
from infra.stack import DurableGraphStack
from tests.infra.template_queries import NO_BUNDLING


def test_cdk_nag_reports_no_unacknowledged_finding(
    app_and_stack: tuple[App, DurableGraphStack],
) -> None:
    app, stack = app_and_stack

    report = AwsSolutionsChecks().validate_scope(app)

    findings = [
        f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
        for v in report.violations
    ]
    assert findings == []
    assert report.success
    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert errors == []


def test_synthesis_fails_on_an_unacknowledged_finding() -> None:
    app, stack = build_app(NO_BUNDLING)
    s3.Bucket(stack, "Careless")  # no TLS enforcement, no access logs

    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-S10"):
        app.synth()
