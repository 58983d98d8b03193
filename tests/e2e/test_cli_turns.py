"""`durable-graph run` on a thread that exists: new input is the next turn of a completed or
failed thread (the chain continues, as the Python API and LangGraph do); a thread that waits
for a decision or is running refuses it (exit 2, saying why and what to do, nothing stored)."""

from __future__ import annotations

from tests.e2e.conftest import Cli

EMAIL = "examples.email_approval:graph"
DOCS = "tests.graphs:docs_graph"


def completed(cli: Cli, thread_id: str) -> dict[str, object]:
    cli.json("run", EMAIL, "--thread", thread_id, "--input", '{"user_prompt": "pay"}')
    doc: dict[str, object] = cli.json(
        "resume", thread_id, "--values", '{"approved": true}', "--as-node", "human_review"
    )
    assert doc["status"] == "completed"
    return doc


def test_new_input_on_a_completed_thread_is_its_next_turn(cli: Cli) -> None:
    """Given a completed thread, when `run --input` gives it new input, then exit 0: the
    same chain continues from START with the new input (step head+1, source input) to the
    next decision, and the whole chain verifies."""
    ended = completed(cli, "chat")
    doc = cli.json("run", EMAIL, "--thread", "chat", "--input", '{"user_prompt": "again"}')
    assert doc["status"] == "suspended" and doc["step"] > int(str(ended["step"]))
    assert doc["values"]["user_prompt"] == "again"
    turn = cli.json("show", "chat", "--step", str(int(str(ended["step"])) + 1))
    assert turn["source"] == "input" and turn["actor"]["kind"] == "cli"
    assert cli.run("verify", "chat").returncode == 0


def test_detached_turn_is_committed_for_the_workers(cli: Cli) -> None:
    ended = completed(cli, "later")
    doc = cli.json("run", EMAIL, "--thread", "later", "--input", '{"user_prompt": "b"}', "--detach")
    assert doc["status"] == "running" and doc["step"] == int(str(ended["step"])) + 1
    cli.json("worker", "--until-idle")
    assert cli.json("status", "later")["status"] == "suspended"


def test_new_input_on_a_failed_thread_runs_a_new_turn(cli: Cli) -> None:
    """Given a failed thread, when `run --input` gives it new input, then the failed tasks
    are dropped and the turn runs from START on the new input."""
    bad = ["run", DOCS, "--thread", "f", "--input", '{"documents": ["broken"]}']
    assert cli.run(*bad).returncode == 1
    doc = cli.json("run", DOCS, "--thread", "f", "--input", '{"documents": ["c"]}')
    assert doc["status"] == "completed" and doc["values"]["report"] == "summary of c"


def test_new_input_on_a_suspended_thread_is_refused_saying_how_to_answer(cli: Cli) -> None:
    cli.json("run", EMAIL, "--thread", "s", "--input", '{"user_prompt": "x"}')
    before = cli.stored()
    done = cli.run("run", EMAIL, "--thread", "s", "--input", '{"user_prompt": "y"}')
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "thread 's' is suspended: it waits for a decision in node 'human_review'" in (
        done.stderr
    )
    assert "durable-graph resume s --resume-value" in done.stderr
    assert "Traceback" not in done.stderr
    assert cli.stored() == before


def test_new_input_on_a_running_thread_is_refused(cli: Cli) -> None:
    cli.json("run", EMAIL, "--thread", "r", "--input", '{"user_prompt": "x"}', "--detach")
    before = cli.stored()
    done = cli.run("run", EMAIL, "--thread", "r", "--input", '{"user_prompt": "y"}')
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "thread 'r' is running: it is at step 0 with tasks in flight" in done.stderr
    assert cli.stored() == before
