"""The README's browser route: `serve`, then `examples/webhook_start.py` starts a thread whose
approval link lands in the serve log and the outbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import REPO, Cli


def test_signed_webhook_start_suspends_with_an_approval_link(cli: Cli, tmp_path: Path) -> None:
    server = cli.spawn("serve", "--port", "0")
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+", line)
        assert url, line
        done = subprocess.run(
            [
                sys.executable,
                "examples/webhook_start.py",
                "--url",
                url.group(0),
                "--thread",
                "web-1",
            ],
            cwd=REPO,
            env=cli.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["thread"]["thread_id"] == "web-1"
        outbox = cli.home / "outbox" / "notifications.jsonl"
        deadline = time.monotonic() + 30
        while not outbox.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        note = json.loads(outbox.read_text().splitlines()[0])
        assert note["thread_id"] == "web-1"
        assert note["links"]["approval"].startswith(url.group(0) + "/approvals/")
    finally:
        server.terminate()
        server.wait(timeout=30)
