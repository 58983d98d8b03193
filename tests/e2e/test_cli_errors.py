"""Bad input through the CLI: a specific message, exit 2, and nothing stored changes. A thread
that fails is not bad input: its status is printed and the exit code is 1."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cli

EMAIL = "examples.email_approval:graph"
DOCS = "tests.graphs:docs_graph"


@pytest.fixture
def suspended(cli: Cli) -> Cli:
    cli.json("run", EMAIL, "--thread", "b1", "--input", '{"user_prompt": "x"}')
    return cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resume", "nope", "--values", '{"approved": true}'], "thread 'nope' does not exist"),
        (
            ["resume", "b1", "--values", '{"approved": true}', "--as-node", "send_mail"],
            "unknown node 'send_mail'",
        ),
        (["resume", "b1", "--values", '{"approved": tru}'], "--values is not valid JSON"),
        (["resume", "b1", "--values", "[1, 2]"], "--values must be a JSON object"),
        (
            ["resume", "b1", "--values", '{"approved": "maybe"}', "--as-node", "human_review"],
            "field 'approved'",
        ),
        (["resume", "b1", "--values", '{"colour": "red"}'], "'colour' is not a field"),
        (["resume", "b1", "--as-node", "human_review", "--expected-step", "0"], "moved on"),
        (["run", EMAIL, "--thread", "b1", "--input", '{"user_prompt": "again"}'], "already exists"),
        (["run", "examples.nothing:graph", "--thread", "z"], "cannot import module"),
        (["status", "missing"], "does not exist"),
        (["show", "b1", "--step", "9"], "has no step 9"),
        (["run", EMAIL, "--thread", "bad/id", "--input", "{}"], "thread id"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    suspended: Cli, args: list[str], message: str
) -> None:
    before = suspended.stored()
    done = suspended.run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert suspended.stored() == before


def test_resuming_a_completed_thread_is_refused(suspended: Cli) -> None:
    suspended.json("resume", "b1", "--values", '{"approved": false}', "--as-node", "human_review")
    before = suspended.stored()
    done = suspended.run(
        "resume", "b1", "--values", '{"approved": true}', "--as-node", "human_review"
    )
    assert done.returncode == 2 and "is completed, not suspended" in done.stderr
    assert suspended.stored() == before


def test_usage_errors_exit_2(cli: Cli) -> None:
    done = cli.run("run", EMAIL)
    assert done.returncode == 2 and "--thread" in done.stderr


def test_a_failed_thread_prints_its_status_and_exits_1_until_fixed(cli: Cli) -> None:
    """Given a node that fails, when run, then the failed status and its error are printed
    and the exit code is 1 (no traceback); running it on, resuming it or forking it while the
    fault remains: exit 1 again; after the fix, resume completes with exit 0."""
    start = ["run", DOCS, "--thread", "f1", "--input", '{"documents": ["a", "broken"]}']
    done = cli.run(*start)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "status   failed at step" in done.stdout
    assert "error    RuntimeError in 'summarise': cannot summarise a broken" in done.stdout
    assert "Traceback" not in done.stderr

    doc = cli.json("run", DOCS, "--thread", "f1", expect=1)
    assert doc["status"] == "failed" and doc["error"]["node"] == "summarise"
    again = cli.json("resume", "f1", expect=1)
    assert again["status"] == "failed" and again["step"] > doc["step"]
    fork = cli.json("fork", "f1", "--step", "0", "--new-thread", "f2", expect=1)
    assert fork["status"] == "failed" and fork["thread_id"] == "f2"

    cli.env["DG_TEST_FIX_BROKEN"] = "1"
    fixed = cli.json("resume", "f1")
    assert fixed["status"] == "completed"
    assert fixed["values"]["report"] == "summary of a | summary of broken"
