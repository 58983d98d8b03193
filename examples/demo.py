"""`make demo`: the seed's exercise, end to end, with real separate processes.

1. Execution 1 — a process starts thread tx-99812: draft_email drafts a high-risk email, the graph
   reaches human_review (interrupt_before), commits, marks the thread suspended and exits 0.
2. The intermission — nothing runs. Another process reads the suspended state.
3. Execution 2 — a different process, given only the thread id and {"approved": true}, injects
   the decision as human_review and runs send_email; the email lands in the local outbox.
   A second thread is rejected and sends nothing.
4. The audit — history, one past state, a diff, a replay of the LLM step, a verification of
   the signed hash chain, a fork ("what if?"), and an exported bundle verified offline.

Everything lives under $DURABLE_GRAPH_HOME (default: ./.durable-graph/demo, wiped at start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRAPH = "examples.email_approval:graph"
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


def banner(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}")


def durable_graph(*args: str, expect: int = 0) -> str:
    """Run one CLI command in its own process, echo it, and return what it printed."""
    command = [sys.executable, "-m", "durable_graph", *args]
    shown = " ".join(a if " " not in a and "{" not in a else f"'{a}'" for a in args)
    print(f"{DIM}$ durable-graph {shown}{RESET}")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    if done.stderr.strip():
        sys.stdout.write(DIM + done.stderr + RESET)
    if done.returncode != expect:
        print(f"{RED}unexpected exit status {done.returncode} (expected {expect}){RESET}")
        raise SystemExit(1)
    print(f"{DIM}(process {'exited'} with status {done.returncode}){RESET}")
    return done.stdout


def main() -> int:
    home = Path(os.environ.setdefault("DURABLE_GRAPH_HOME", str(REPO / ".durable-graph" / "demo")))
    if home.name == "demo" and home.exists():
        shutil.rmtree(home)
    outbox = home / "outbox" / "sent"
    print(f"{BOLD}durable-graph demo{RESET} — state in {home}")

    banner("Execution 1: start tx-99812, draft a high-risk email, suspend, exit")
    durable_graph(
        "run",
        GRAPH,
        "--thread",
        "tx-99812",
        "--input",
        '{"user_prompt": "pay the new supplier before Friday"}',
    )

    banner("Intermission: no process is running; the state rests in SQLite")
    status = json.loads(durable_graph("status", "tx-99812", "--json"))
    assert status["status"] == "suspended" and status["next"] == ["human_review"]
    print(f"suspended at step {status['step']}, waiting before {status['next'][0]!r}")

    banner("Execution 2: a different process approves as human_review and sends")
    durable_graph(
        "resume",
        "tx-99812",
        "--values",
        '{"approved": true}',
        "--as-node",
        "human_review",
        "--actor",
        "alice@example.com",
    )
    sent = sorted(outbox.iterdir())
    assert len(sent) == 1, sent
    print(f"\n{GREEN}email delivered to the local outbox:{RESET} {sent[0]}")
    print(sent[0].read_text(encoding="utf-8"))

    banner("A second thread, rejected: nothing is sent")
    durable_graph(
        "run",
        GRAPH,
        "--thread",
        "tx-99813",
        "--input",
        '{"user_prompt": "refund the duplicate invoice"}',
    )
    rejected = json.loads(
        durable_graph(
            "resume",
            "tx-99813",
            "--values",
            '{"approved": false}',
            "--as-node",
            "human_review",
            "--json",
        )
    )
    assert rejected["values"]["outcome"] == "rejected"
    assert len(list(outbox.iterdir())) == 1

    banner("Audit: the whole history, one past state, a diff, a replay, the verified chain")
    durable_graph("history", "tx-99812")
    durable_graph("show", "tx-99812", "--step", "1")
    durable_graph("diff", "tx-99812", "1", "3")
    durable_graph("replay", "tx-99812", "--step", "1")
    durable_graph("verify", "tx-99812")

    banner("Time travel: fork the suspended state with another recipient, then compare")
    durable_graph(
        "fork",
        "tx-99812",
        "--step",
        "1",
        "--new-thread",
        "tx-99812-whatif",
        "--values",
        '{"recipient": "treasury@example.com"}',
        "--detach",
    )
    durable_graph("diff", "tx-99812", "1", "0", "--thread-b", "tx-99812-whatif")

    banner("Export a self-contained audit bundle and verify it without the store")
    bundle = home / "tx-99812.audit.json"
    durable_graph("export", "tx-99812", "--out", str(bundle))
    durable_graph("verify", "--bundle", str(bundle))
    durable_graph("verify", "--all")

    print(f"\n{GREEN}{BOLD}demo complete.{RESET} Explore it yourself:")
    print(f"  export DURABLE_GRAPH_HOME={home}")
    print("  .venv/bin/durable-graph history tx-99812")
    print("  .venv/bin/durable-graph show tx-99812 --step 2 --json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
