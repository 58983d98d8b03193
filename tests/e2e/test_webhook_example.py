"""The README's browser route: `serve`, then `examples/webhook_start.py` starts a thread whose
approval link lands in the serve log and the outbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.e2e.conftest import REPO, Cli


@contextmanager
def started_by_webhook(cli: Cli, thread_id: str) -> Iterator[str]:
    """`serve` on a free port, and `examples/webhook_start.py` starting `thread_id` through
    it; the server's URL for the block, the server stopped after it."""
    server = cli.spawn("serve", "--port", "0")
    try:
        assert server.stdout is not None and server.stderr is not None
        line = server.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+", line)
        assert url, line + (server.stderr.read() if server.poll() is not None else "")
        start = ["examples/webhook_start.py", "--url", url.group(0), "--thread", thread_id]
        done = subprocess.run(
            [sys.executable, *start],
            cwd=REPO,
            env=cli.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["thread"]["thread_id"] == thread_id
        yield url.group(0)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_signed_webhook_start_suspends_with_an_approval_link(cli: Cli) -> None:
    with started_by_webhook(cli, "web-1") as url:
        outbox = cli.home / "outbox" / "notifications.jsonl"
        deadline = time.monotonic() + 30
        while not outbox.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        note = json.loads(outbox.read_text().splitlines()[0])
        assert note["thread_id"] == "web-1"
        assert note["links"]["approval"].startswith(url + "/approvals/")
