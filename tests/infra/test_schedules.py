"""The sweeper's schedules in the synthesised stack: the sweep and the daily retention job, by
default and as the context sets them.
"""

from __future__ import annotations

import json

from aws_cdk.assertions import Template

from durable_graph.backends.aws import names
from infra.app import build_app
from infra.components.functions import SWEEPER
from tests.infra.template_queries import NO_BUNDLING, function_of, rule


def test_sweeper_runs_every_two_minutes_by_default(template: Template) -> None:
    """The default schedule and window notice a stranded thread within minutes."""
    sweeper_id, _ = function_of(template, SWEEPER)

    sweep = rule(template, "SweepSchedule")

    assert sweep["Properties"]["ScheduleExpression"] == "rate(2 minutes)"
    assert sweep["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in sweep["Properties"]["Targets"]] == [
        {"Fn::GetAtt": [sweeper_id, "Arn"]}
    ]
    assert "Input" not in sweep["Properties"]["Targets"][0]


def test_sweeper_runs_the_retention_job_daily_by_default(template: Template) -> None:
    """A second rule sends the sweeper the retention job's event; `-c retention_hours` sets it."""
    sweeper_id, _ = function_of(template, SWEEPER)

    retention = rule(template, "RetentionSchedule")
    (target,) = retention["Properties"]["Targets"]

    assert retention["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert target["Arn"] == {"Fn::GetAtt": [sweeper_id, "Arn"]}
    assert json.loads(target["Input"]) == {names.SWEEPER_JOB_KEY: names.RETENTION_JOB}
    _, stack = build_app({**NO_BUNDLING, "retention_hours": "6"})
    hourly = rule(Template.from_stack(stack), "RetentionSchedule")
    assert hourly["Properties"]["ScheduleExpression"] == "rate(6 hours)"


def test_sweeper_schedule_and_window_come_from_context() -> None:
    """`-c sweep_minutes=... -c stale_seconds=...` set the rule's rate and the functions' window."""
    _, stack = build_app({**NO_BUNDLING, "sweep_minutes": "7", "stale_seconds": "420"})
    template = Template.from_stack(stack)

    sweep = rule(template, "SweepSchedule")
    _, sweeper = function_of(template, SWEEPER)
    variables = sweeper["Properties"]["Environment"]["Variables"]

    assert sweep["Properties"]["ScheduleExpression"] == "rate(7 minutes)"
    assert (variables[names.ENV_STALE_SECONDS], variables[names.ENV_SWEEP_MINUTES]) == ("420", "7")
