"""A full disk is transient: the worker waits it out and the thread completes by itself.

The store lives on a real, small tmpfs (mounted here: the test needs root, or is skipped), which
a real file fills to ENOSPC; without root, the worker runs under a real file-size limit
(RLIMIT_FSIZE: EFBIG) that is lifted later. A worker that is running then cannot commit
anything: it logs one line per attempt (no traceback), backs off, and leaves the thread running.
When the space comes back, the same worker finishes the thread, with no `resume`.
"""

from __future__ import annotations

import os
import resource
import signal
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


def start_worker(cli: Cli, err: Path, limit: int | None = None) -> subprocess.Popen[str]:
    """A `worker --until-idle` process; with `limit`, under a file-size limit of that many bytes
    (RLIMIT_FSIZE, SIGXFSZ ignored so a write past it fails with EFBIG, as on a full disk)."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    with err.open("w") as stderr:
        return subprocess.Popen(
            cli.command("worker", "--until-idle", "--json", "--visibility-timeout", "2"),
            env=cli.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=limited,
        )


def assert_waited_out(
    cli: Cli, tmp_path: Path, worker: subprocess.Popen[str], log: str, *, effects: int = 1
) -> None:
    assert worker.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(line.startswith("warning ") for line in lines), lines[:20]
    status = cli.json("status", "t1")
    assert status["status"] == "completed", status
    assert status["values"]["log"] == ["first", "slow", "last"]
    assert 1 <= marks(tmp_path, "slow-effect") <= effects
    assert cli.json("verify", "t1")["ok"] is True


def test_a_full_disk_is_waited_out_and_the_thread_completes(
    tmpfs: Path, tmp_path: Path, cli: Cli
) -> None:
    """Given a thread whose store is on a tmpfs filled to ENOSPC by a real file while a worker
    runs it, then the worker logs one line per attempt and no traceback, the thread stays
    running (not failed), and once the file is deleted the thread completes without a
    resume."""
    cli.home = tmpfs / "home"
    cli.env["DURABLE_GRAPH_HOME"] = str(cli.home)
    cli.env["DG_SLOW_SECONDS"] = "1"
    started = cli.json("run", SLOW, "--thread", "t1", "--input", "{}", "--detach")
    assert started["status"] == "running"
    err = tmp_path / "worker.err"
    worker = start_worker(cli, err)
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
    assert_waited_out(cli, tmp_path, worker, err.read_text())


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")
def test_a_file_size_limit_is_waited_out_and_the_thread_completes(tmp_path: Path, cli: Cli) -> None:
    """The same without privileges: the worker runs under a real file-size limit just above
    the store's files (writes past it fail with EFBIG), which is lifted from outside later."""
    cli.env["DG_SLOW_SECONDS"] = "0"
    cli.json("run", SLOW, "--thread", "t1", "--input", "{}", "--detach")
    largest = max(p.stat().st_size for p in cli.home.rglob("*") if p.is_file())
    err = tmp_path / "worker.err"
    worker = start_worker(cli, err, limit=max(largest, 32768) + 8192)  # room for the WAL index
    try:
        wait_for_lines(err, "disk refused the write", 3)
        assert worker.poll() is None, err.read_text()
        heads = cli.rows("SELECT max(step) FROM checkpoints WHERE thread_id = 't1'")
        assert heads[0][0] < 3  # not completed, and not failed (a failure is a step too)
        assert cli.json("status", "t1")["status"] == "running"
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, unlimited)
        worker.communicate(timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # The effect may have run before its result could be recorded (the limit hit that write):
    # then the next delivery runs it again, as after a crash; the idempotency key is the same.
    assert_waited_out(cli, tmp_path, worker, err.read_text(), effects=2)
