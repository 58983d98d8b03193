"""SIGKILL inside `ctx.step`: the next delivery takes the orphaned claim over.

A process is killed while its effect runs (after the receiver got the call, before the result
was recorded). Another worker then finishes the thread within about one visibility timeout,
with no manual step: before, the claim's fixed 300 s lease stalled the thread for five minutes.
The effect ran at most twice, always with the same idempotency key, so a receiver that drops
keys it has seen performed it once.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, effect_folder, kill, wait_while_running

GRAPH = "tests.e2e.effect_graphs:charge_graph"
LEASE = 2.0  # seconds: the visibility timeout of every process here
SLACK = 25.0  # start-ups and polling under load; well under the 60 s default lease
SLOW = {"DG_EFFECT_SLEEP": "60"}


def _wait_for_marker(folder: Path, proc: subprocess.Popen[str]) -> None:
    marker = folder / f"inside-{proc.pid}"
    wait_while_running(proc, marker.exists, "the effect never started")


@pytest.mark.parametrize("victim", ["run", "worker"])
def test_worker_killed_inside_an_effect_is_taken_over_within_one_lease(
    victim: str, cli: Cli, tmp_path: Path
) -> None:
    """Given a process (the inline runner of `run`, or a `worker`) SIGKILLed inside `ctx.step`
    after the receiver got the call, when another worker starts, then the thread completes
    within about one visibility timeout of the kill, the takeover is logged once, the effect
    ran at most twice and the receiver saw one distinct idempotency key."""
    folder = effect_folder(cli, tmp_path, LEASE)
    slow = {"DG_EFFECT_SLEEP": "60"}
    if victim == "run":
        proc = cli.spawn("run", GRAPH, "--thread", "t1", "--input", "{}", extra_env=slow)
    else:
        cli.json("run", GRAPH, "--thread", "t1", "--input", "{}", "--detach")
        proc = cli.spawn("worker", "--visibility-timeout", str(LEASE), extra_env=slow)
    _wait_for_marker(folder, proc)
    kill(proc)
    killed_at = time.monotonic()
    assert cli.json("status", "t1")["status"] == "running"

    done = cli.run("worker", "--until-idle", "--json", "--visibility-timeout", str(LEASE))
    elapsed = time.monotonic() - killed_at

    assert done.returncode == 0, done.stderr
    status = cli.json("status", "t1")
    assert status["status"] == "completed", status
    assert elapsed < LEASE + SLACK, f"took {elapsed:.1f}s after the kill"
    assert done.stderr.count("taking over the claim") == 1, done.stderr
    received = (folder / "received").read_text().split("\n")[:-1]
    keys = {line.split()[0] for line in received}
    assert 1 <= len(received) <= 2 and len(keys) == 1, received
    assert status["values"]["receipt"] == f"charged:{next(iter(keys))[:8]}"
    assert cli.json("verify", "t1")["ok"] is True


def test_mail_sent_by_a_process_killed_before_its_result_is_stored_once(
    cli: Cli, tmp_path: Path
) -> None:
    """Given `run` SIGKILLed inside `ctx.step` right after the embedded mailer sent a message,
    when a worker finishes the thread, then the killed send left no row (the mail row commits
    with the step's result, `Database.defer`), and the store holds exactly one message, the
    worker's, with its file copy, and the step's result names it."""
    folder = effect_folder(cli, tmp_path, LEASE)
    graph = "tests.e2e.effect_graphs:mail_graph"
    proc = cli.spawn("run", graph, "--thread", "m1", "--input", "{}", extra_env=SLOW)
    _wait_for_marker(folder, proc)
    kill(proc)
    assert cli.rows("SELECT key FROM mail") == []
    [(claim,)] = cli.rows("SELECT body FROM records WHERE key LIKE 'fx#%'")
    assert json.loads(claim)["status"] == "started"

    done = cli.run("worker", "--until-idle", "--json", "--visibility-timeout", str(LEASE))
    assert done.returncode == 0, done.stderr
    status = cli.json("status", "m1")
    assert status["status"] == "completed", status
    [(key, body)] = cli.rows("SELECT key, body FROM mail")
    assert status["values"]["message_id"] == key
    assert json.loads(body)["body"] != f"by {proc.pid}"  # the worker's send, not the killed one
    [copy] = (cli.home / "outbox" / "sent").iterdir()
    assert copy.name == f"{key}.json" and json.loads(copy.read_text())["idempotency_key"] == key
