"""A full disk is transient: the worker waits it out and the thread completes by itself.

The store lives on a real, small tmpfs (mounted here: the test needs root, or is skipped), which
a real file fills to ENOSPC. A worker that is running then cannot commit anything: it logs one
line per attempt (no traceback), backs off, and leaves the thread running. When the file is
deleted, the same worker finishes the thread, with no `resume`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Cli
from tests.e2e.test_crash_and_races import marks, wait_for

pytestmark = pytest.mark.slow

SLOW = "tests.graphs:slow_graph"
SIZE = "4m"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a real file until the disk says ENOSPC."""
    path = folder / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == 28, exc
    try:  # the last blocks, smaller than a chunk
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as exc:
        assert exc.errno == 28, exc
    finally:
        os.close(fd)
    return path


def wait_for_lines(path: Path, needle: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while path.read_text().count(needle) < count:
        assert time.monotonic() < deadline, path.read_text()[-3000:]
        time.sleep(0.1)


def test_a_full_disk_is_waited_out_and_the_thread_completes(
    tmpfs: Path, tmp_path: Path, cli: Cli
) -> None:
    """Given a thread whose store is on a tmpfs filled to ENOSPC by a real file, when a worker
    runs, then it logs one line per attempt and no traceback, the thread stays running (not
    failed), and once the file is deleted the thread completes without a resume."""
    cli.home = tmpfs / "home"
    cli.env["DURABLE_GRAPH_HOME"] = str(cli.home)
    cli.env["DG_SLOW_SECONDS"] = "1"
    started = cli.json("run", SLOW, "--thread", "t1", "--input", "{}", "--detach")
    assert started["status"] == "running"

    err = tmp_path / "worker.err"
    with err.open("w") as stderr:
        worker = subprocess.Popen(
            cli.command("worker", "--until-idle", "--json", "--visibility-timeout", "2"),
            env=cli.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        wait_for(tmp_path / "marks" / "slow-started")  # step 1 committed, `slow` running
        filler = fill(tmpfs)
        wait_for_lines(err, "disk refused the write", 3)
        assert worker.poll() is None, err.read_text()
        assert marks(tmp_path, "slow-effect") == 0
        heads = cli.rows("SELECT max(step) FROM checkpoints WHERE thread_id = 't1'")
        assert heads == [(1,)]  # still running: nothing failed was committed
        filler.unlink()
        worker.communicate(timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    log = err.read_text()
    assert worker.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    lines = [line for line in log.splitlines() if line.strip()]
    assert all(line.startswith("warning ") for line in lines), lines[:20]
    status = cli.json("status", "t1")
    assert status["status"] == "completed", status
    assert status["values"]["log"] == ["first", "slow", "last"]
    assert marks(tmp_path, "slow-effect") == 1
    assert cli.json("verify", "t1")["ok"] is True
