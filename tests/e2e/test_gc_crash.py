"""A worker SIGKILLed after its node stored a document (`ctx.save`) and before its step
committed leaves an object no record names; `durable-graph gc` deletes it once the grace period
is over, and only it: the thread, finished by another worker, still verifies and exports, and
its own document stays."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from durable_graph.bundle import load_bundle, verify_bundle
from tests.e2e.conftest import Cli

GRAPH = "tests.e2e.gc_graphs:draft_graph"
LEASE = 2.0  # seconds: the visibility timeout of the workers here


def test_what_a_killed_worker_saved_is_collected_and_nothing_else(cli: Cli, tmp_path: Path) -> None:
    """Given a worker SIGKILLed while its node sleeps after saving its draft, and the thread
    then finished by another worker (whose node saves another draft)
    When `gc --grace 1s` runs (a dry run first)
    Then the dry run names the killed worker's draft alone; the run deletes it; the thread
    verifies, exports, and its own draft is still readable."""
    folder = tmp_path / "gc"
    folder.mkdir()
    cli.env["DG_GC_DIR"] = str(folder)
    cli.json("run", GRAPH, "--thread", "d1", "--input", "{}", "--detach")
    victim = cli.spawn(
        "worker", "--visibility-timeout", str(LEASE), extra_env={"DG_GC_SLEEP": "60"}
    )
    marker = folder / f"saved-{victim.pid}"
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the node never saved its draft"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    lost = marker.read_text()

    done = cli.run("worker", "--until-idle", "--visibility-timeout", str(LEASE))
    assert done.returncode == 0, done.stderr
    status = cli.json("status", "d1")
    assert status["status"] == "completed" and status["values"]["draft"]["sha256"] != lost
    time.sleep(1.1)  # everything is older than the grace given below

    dry = cli.json("gc", "--dry-run", "--grace", "1s")
    assert dry["doomed"] == [lost] and dry["deleted"] == 1
    collected = cli.json("gc", "--grace", "1s")

    assert collected["doomed"] == [lost] and collected["threads"] == 1
    assert not (cli.home / "payloads" / "sha256" / lost[:2] / lost).exists()
    kept = status["values"]["draft"]["sha256"]
    assert (cli.home / "payloads" / "sha256" / kept[:2] / kept).exists()
    assert cli.json("verify", "d1")["ok"] is True
    out = tmp_path / "d1.json"
    assert cli.run("export", "d1", "--out", str(out)).returncode == 0
    assert verify_bundle(load_bundle(out)).ok
