"""The payload collector's schedule and rights in the stack (`infra/stack.py`): a rule sends the
sweeper the `gc` job daily (`-c gc_hours` sets it), every function is told the grace, and the
sweeper may list the payload prefix and delete there, which is all `durable-graph gc` needs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.components.functions import SPECS, SWEEPER
from infra.stack import StackConfig
from tests.infra.template_queries import NO_BUNDLING, actions_of, function_of, rule


def test_the_sweeper_runs_the_payload_collector_daily_by_default(template: Template) -> None:
    sweeper_id, _ = function_of(template, SWEEPER)

    gc = rule(template, "PayloadGcSchedule")
    (target,) = gc["Properties"]["Targets"]

    assert gc["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert target["Arn"] == {"Fn::GetAtt": [sweeper_id, "Arn"]}
    assert json.loads(target["Input"]) == {names.SWEEPER_JOB_KEY: names.GC_JOB}
    _, stack = build_app({**NO_BUNDLING, "gc_hours": "6", "gc_grace_minutes": "30"})
    built = Template.from_stack(stack)
    assert rule(built, "PayloadGcSchedule")["Properties"]["ScheduleExpression"] == "rate(6 hours)"
    for spec in SPECS:
        variables = function_of(built, spec)[1]["Properties"]["Environment"]["Variables"]
        assert variables[names.ENV_GC_GRACE_SECONDS] == "1800"


def test_the_sweeper_may_list_and_delete_payloads_which_the_collector_needs(
    template: Template,
) -> None:
    actions = actions_of(template, SWEEPER)
    needed = {"s3:ListBucket", "s3:ListBucketVersions", "s3:GetObject", "s3:DeleteObject"}
    assert needed | {"s3:DeleteObjectVersion"} <= actions


def test_a_grace_shorter_than_a_lambdas_life_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_grace_minutes"):
        StackConfig(gc_grace_minutes=5)
