"""The audit commands, the same on every store: memory, SQLite and DynamoDB + S3 (moto).

Given the chat thread (9 steps: input, six recorded LLM replies, a human decision, the review)
written by an application module that is then deleted, every read command answers from the
store alone, with the same JSON and exit codes on each backend.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from durable_graph.cli import main
from durable_graph.signing import key_of_pem
from tests.audit.conftest import THREAD, Store, opened, run_chat

REPO = Path(__file__).resolve().parents[2]


def test_status_history_show_without_the_application(
    chat: Store, absent_app: Callable[[], bool]
) -> None:
    status = chat.json("status", THREAD)
    assert status["status"] == "completed" and status["step"] == 8
    assert status["values"]["note"] == "reviewed" and len(status["values"]["messages"]) == 6
    assert status["graph"]["name"] == chat.graph_name
    history = chat.json("history", THREAD)
    assert [r["step"] for r in history] == list(range(8, -1, -1))
    assert history[1]["source"] == "update" and history[1]["actor"]["id"] == "alice@example.com"
    assert [r["step"] for r in chat.json("history", THREAD, "--limit", "2", "--before", "5")] == [
        4,
        3,
    ]
    assert [r["step"] for r in chat.json("history", THREAD, "--node", "review")] == [8]
    shown = chat.json("show", THREAD, "--step", "3")
    assert shown["values"]["turns"] == 3 and shown["io"][0]["name"].startswith("llm")
    assert shown["values"]["attachment"] == "A" * 10_000
    text = chat.run("show", THREAD, "--step", "3")
    assert text.code == 0 and "io     record llm" in text.out
    assert not absent_app(), "a read command imported the application"


def test_diff_verify_export_without_the_application(
    chat: Store, absent_app: Callable[[], bool], tmp_path: Path
) -> None:
    changes = chat.json("diff", THREAD, "6", "7")["changes"]
    assert changes == [{"field": "approved", "change": "changed", "old": None, "new": True}]
    appended = chat.json("diff", THREAD, "2", "3")["changes"]
    assert [c["change"] for c in appended if c["field"] == "messages"] == ["appended"]
    report = chat.json("verify", THREAD)
    assert report["ok"] is True and report["checked"] == 9
    assert report["signed_steps"] == [6, 8]
    every = chat.json("verify", "--all")
    assert every["ok"] is True and every["threads"] == 1 and every["verified"] == 1
    out = tmp_path / "bundle.json"
    exported = chat.json("export", THREAD, "--out", str(out))
    assert exported["records"] == 9 and exported["signatures"] == 2
    assert not absent_app(), "a read command imported the application"


def test_bundle_verifies_offline_against_the_ledger_key(chat: Store, tmp_path: Path) -> None:
    """Given the ledger's public key fetched from the store (KMS on AWS) and an export, then
    `verify --bundle --trusted-key` passes with no store at all, and fails with another key."""
    pem = tmp_path / "ledger.pem"
    key = chat.json("ledger-key", "--out", str(pem))
    assert key_of_pem(pem.read_text()).key_id == key["key_id"]
    bundle = tmp_path / "b.json"
    chat.json("export", THREAD, "--out", str(bundle))
    offline = Store("offline", "memory://nothing-here", chat.backend, chat.app_module)
    report = offline.json("verify", "--bundle", str(bundle), "--trusted-key", str(pem))
    assert report["ok"] is True and report["key_ids"] == [key["key_id"]]
    other = tmp_path / "other.pem"
    other.write_text(Store("o", "memory://other-key", chat.backend, "x").json("ledger-key")["pem"])
    refused = offline.json("verify", "--bundle", str(bundle), "--trusted-key", str(other), expect=1)
    assert refused["ok"] is False and refused["check"] == "signature"


def test_fork_replay_and_sign_load_the_graph(chat: Store) -> None:
    """`fork` and `replay` import the application (they route and run); on AWS the fork is
    committed and left to the deployed workers."""
    fork = chat.json(
        "fork", THREAD, "--step", "6", "--new-thread", "c1-x", "--values", '{"approved": false}'
    )
    assert fork["origin"]["thread_id"] == THREAD and fork["origin"]["step"] == 6
    assert fork["values"]["approved"] is False
    assert fork["status"] == "suspended" and fork["step"] == 0
    running = chat.json("fork", THREAD, "--step", "2", "--new-thread", "c1-y")
    if chat.kind == "aws":  # committed and queued for the Lambda workers, not run here
        assert running["status"] == "running" and running["step"] == 0
        assert chat.backend.queue.depth() == 1
    else:
        assert running["status"] == "suspended" and running["values"]["turns"] == 6
    replayed = chat.json("replay", THREAD, "--step", "3")
    assert replayed["verdict"] == "reproduced"
    signed = chat.json("sign", "c1-x")
    assert signed["step"] == 0 and chat.json("verify", "c1-x")["signed_steps"] == [0]
    assert chat.json("verify", "--all", expect=0)["threads"] == 3


def test_graph_commands_say_so_when_the_application_is_gone(
    chat: Store, absent_app: Callable[[], bool]
) -> None:
    done = chat.run("replay", THREAD, "--step", "3")
    assert done.code == 2 and f"cannot import module {chat.app_module!r}" in done.err


def test_unknown_threads_and_steps_exit_2(store: Store) -> None:
    for args in (
        ("status", "nope"),
        ("history", "nope"),
        ("verify", "nope"),
        ("diff", "nope", "0", "1"),
    ):
        done = store.run(*args)
        assert done.code == 2 and "'nope' does not exist" in done.err, args


def test_store_flag_after_the_command(chat: Store) -> None:
    """`--store` is accepted after the command name too, and wins over one given before."""
    done = chat.run("status", THREAD, "--json")
    assert done.code == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["--store", "memory://elsewhere", "status", THREAD, "--store", chat.uri, "--json"]
        )
    assert code == 0 and json.loads(out.getvalue()) == done.json()


def test_a_real_process_reads_without_the_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the application deleted, when an auditor runs the CLI in a fresh process with only
    the store URI, then status, history and verify answer (a real SQLite file, a real process:
    the memory store is per process, and moto in-process is not reachable from another)."""
    with opened("sqlite", tmp_path, monkeypatch) as store:
        run_chat(store.app())
        (tmp_path / f"{store.app_module}.py").unlink()
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}"}
        for args, wanted in (
            (["status", THREAD], "status   completed at step 8"),
            (["history", THREAD], "alice@example.com"),
            (["verify", THREAD], "ok: 9 checkpoints"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "durable_graph", *args, "--store", store.uri],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0 and wanted in done.stdout, (args, done.stdout, done.stderr)


MASKS = [
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "<hash>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z"), "<time>"),
    (re.compile(r"audit_app_[0-9a-f]+"), "<app>"),
    (re.compile(r"\bvm:\d+:[0-9a-f]+"), "<worker>"),
    # where a payload lives (file:// or s3://) and how long a step took are the backend's own
    (re.compile(r'"uri": "[^"]+"'), '"uri": "<payload>"'),
    (re.compile(r'"duration_ms": [\d.]+'), '"duration_ms": <ms>'),
]


def _masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def test_dynamodb_and_s3_print_what_sqlite_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the same thread on SQLite and on DynamoDB + S3, every read command prints the same
    text and JSON, with the same exit code (hashes, times and worker ids aside)."""
    commands = [
        ("status", THREAD),
        ("history", THREAD),
        ("show", THREAD, "--step", "3"),
        ("diff", THREAD, "2", "7"),
        ("verify", THREAD),
        ("verify", "--all", "--quiet"),
        ("status", "nope"),
    ]
    printed: dict[str, list[tuple[int, str, str]]] = {}
    for kind in ("sqlite", "aws"):
        (tmp_path / kind).mkdir()
        with opened(kind, tmp_path / kind, monkeypatch) as store:
            run_chat(store.app())
            printed[kind] = []
            for command in commands:
                for flags in ((), ("--json",)):
                    done = store.run(*command, *flags)
                    printed[kind].append((done.code, _masked(done.out), _masked(done.err)))
    assert printed["aws"] == printed["sqlite"]
    assert [code for code, _, _ in printed["aws"]] == [0] * 12 + [2, 2]
