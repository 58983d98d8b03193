"""Bad input through the CLI: a specific message, exit 2, and nothing stored changes. A thread
that fails is not bad input: its status is printed and the exit code is 1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from durable_graph.cli.inputs import MAX_INPUT_BYTES
from tests.e2e.conftest import REPO, Cli

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
        (
            ["run", EMAIL, "--thread", "b1", "--input", '{"user_prompt": "again"}'],
            "waits for a decision",
        ),
        (["run", "examples.nothing:graph", "--thread", "z"], "cannot import module"),
        (["status", "missing"], "does not exist"),
        (["show", "b1", "--step", "9"], "has no step 9"),
        (["run", EMAIL, "--thread", "bad/id", "--input", "{}"], "thread id"),
        (
            [
                "run",
                EMAIL,
                "--thread",
                "deep",
                "--input",
                '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}",
            ],
            "--input is nested deeper than 200 levels",
        ),
        (
            ["run", EMAIL, "--thread", "sur", "--input", '{"user_prompt": "\\ud800"}'],
            "--input is not valid Unicode: it holds a lone surrogate (\\ud800)",
        ),
        (["status", "b\udcff1"], "argument 2 is not valid UTF-8: b'b\\xff1'"),
        (["run", EMAIL, "--thread", "f", "--input", "@/no/such.json"], "No such file"),
        (["resume", "b1", "--values", "@/no/such.json"], "--values @/no/such.json: cannot read"),
        (["worker", "--until-idle", "--threads", "0"], "--threads: must be a whole number"),
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


def run_with_stdin(cli: Cli, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        cli.command(*args), cwd=REPO, env=cli.env, input=data, capture_output=True, timeout=60
    )


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_store_is_one_clear_line_and_exit_2(
    suspended: Cli, tmp_path: Path, damage: str
) -> None:
    """Given a store file that is not SQLite, or a real store cut in half, when any command
    opens it, then one line names the file and `PRAGMA integrity_check`, exit 2, no traceback,
    and the file is left as it was."""
    for index in range(6):  # enough pages that half the file loses some
        prompt = json.dumps({"user_prompt": f"{index}" * 3000})
        suspended.json("run", EMAIL, "--thread", f"t{index}", "--input", prompt)
    db = suspended.home / "state.db"
    data = db.read_bytes()
    db.write_bytes(b"not a database, " * 512 if damage == "garbage" else data[: len(data) // 2])
    before = db.read_bytes()
    for args in (["status", "b1"], ["worker", "--until-idle"], ["run", EMAIL, "--thread", "n"]):
        done = suspended.run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith(f"error: {db} is not a durable-graph store or is corrupt ("), line
        assert f"sqlite3 {db} 'PRAGMA integrity_check'" in line
    assert db.read_bytes() == before


def test_input_too_large_or_not_utf8_is_refused_before_parsing(
    suspended: Cli, tmp_path: Path
) -> None:
    """Given input over the documented maximum (in a file, on stdin) or a file that is not
    UTF-8, then one clear line and exit 2, and nothing stored changes."""
    before = suspended.stored()
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.write(b'{"user_prompt": "')
        handle.truncate(MAX_INPUT_BYTES + 10)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"user_prompt": "café"}'.encode("latin-1"))
    cases = [
        (["run", EMAIL, "--thread", "n1", "--input", f"@{big}"], b"", "too large"),
        (["run", EMAIL, "--thread", "n2", "--input", "-"], big.read_bytes(), "(stdin)"),
        (["run", EMAIL, "--thread", "n3", "--input", f"@{latin}"], b"", "is not valid UTF-8"),
        (["resume", "b1", "--values", "-"], b'{"approved": tru', "--values is not valid JSON"),
    ]
    for args, stdin, message in cases:
        done = run_with_stdin(suspended, stdin, *args)
        err = done.stderr.decode()
        assert done.returncode == 2, (args, err)
        assert message in err and "Traceback" not in err
        assert len(err.splitlines()) == 1, err
    assert suspended.stored() == before


def test_input_larger_than_one_argument_comes_from_a_file_or_stdin(
    cli: Cli, tmp_path: Path
) -> None:
    """Given input above Linux's 128 KiB cap on one argument, then `run --input @file`,
    `run --input -` and `resume --values @file` take it."""
    prompt = "p" * (200 * 1024)
    source = tmp_path / "input.json"
    source.write_text(json.dumps({"user_prompt": prompt}))
    done = cli.json("run", EMAIL, "--thread", "l1", "--input", f"@{source}")
    assert done["status"] == "suspended" and done["values"]["user_prompt"] == prompt
    piped = run_with_stdin(
        cli, source.read_bytes(), "run", EMAIL, "--thread", "l2", "--input", "-", "--json"
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["values"]["user_prompt"] == prompt
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"approved": False, "reviewer_comment": "n" * 200 * 1024}))
    doc = cli.json("resume", "l1", "--values", f"@{decision}", "--as-node", "human_review")
    assert doc["status"] == "completed"


@pytest.mark.parametrize(
    ("where", "detail"),
    [
        ("state.db is a folder", "unable to open database file"),
        ("home in a file", "Not a directory"),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_clear_line_and_exit_2(
    cli: Cli, tmp_path: Path, where: str, detail: str
) -> None:
    """Given DURABLE_GRAPH_HOME where no store can be opened, then one line says so and how to
    fix it, and exit 2."""
    db = cli.home / "state.db"
    if where == "state.db is a folder":
        db.mkdir(parents=True)
    else:
        (tmp_path / "plain").write_text("x")
        cli.env["DURABLE_GRAPH_HOME"] = str(tmp_path / "plain" / "home")
        db = tmp_path / "plain" / "home" / "state.db"
    done = cli.run("run", EMAIL, "--thread", "o1", "--input", "{}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        f"error: cannot open the store {db} ({detail}): "
        "set DURABLE_GRAPH_HOME to a folder you can write"
    ]
