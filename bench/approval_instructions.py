"""CPU instructions per warm approval thread (run → suspend → approve → complete), counted by
valgrind's callgrind: a number that does not depend on the machine's load, for comparing two
builds (or durable-graph and LangGraph) when timings on a shared machine are too noisy to.

Each engine runs in a child process under `valgrind --tool=callgrind` on tmpfs (`/dev/shm`,
else a temporary folder): it runs `WARM` threads first (imports, caches, first-use work), then
zeroes the counters (`callgrind_control -z`), runs `--threads` threads, and dumps them
(`callgrind_control -d`): what is printed is that section's instructions divided by its threads,
every thread of the process included (the SQLite library, zlib, OpenSSL, pydantic-core and
orjson as well as the interpreter), kernel time excluded. durable-graph's outbox file copies
are batched by a timer (`file_copies.py`); under callgrind a thread takes ~50x longer, so the
batch is widened to match the number of copies a batch holds at full speed.

Instructions are not time: a cache miss, a system call, an fsync or a switch between threads
costs none here, so this measures the engine's own work, and `approval_throughput.py` measures
time and I/O. The two differ most for LangGraph, which hands each step to a thread pool: on
2026-12-01 it ran about as many instructions per thread as durable-graph (9.9M against 10.2M)
but took 1.6-1.8x its CPU time, with ~30 voluntary context switches per thread against < 1
and several times the system time (`bench/results/approval_instructions.txt`).

`--group` counts the group-commit path too: `IN_FLIGHT` (100) threads in flight through one
worker (`Worker.handle_group`, its tasks in turn on its thread), one wave as
`approval_throughput.py` runs them: the starts in one unit of work, the worker's batch, the
approvals, the worker again (a batch of 100 is what the throughput bench runs, and what a batch
of 20 does not show: per-batch caches that hold fewer steps than a batch).

    .venv/bin/python bench/approval_instructions.py [--threads 20] [--previous DIR] [--group]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.child_env import child_env

WARM = 5  # threads run before counting
TMPFS = Path("/dev/shm")
BATCH_SECONDS = 5.0  # the outbox copies' batch under callgrind (0.2 s at full speed)
IN_FLIGHT = 100  # threads counted in flight by `--group`, as approval_throughput's waves


# Run threads `ids`; the outcome of thread i (read after counting); close the store.
Flow = tuple[Callable[[range], None], Callable[[int], Any], Callable[[], None]]


def _durable_graph(root: Path, *, group: bool = False) -> Flow:
    """One thread at a time (`invoke`, then `resume`), or with `group` all of `ids` in flight
    through one worker, a wave as `approval_throughput.bench_group_commit` runs it
    (`approval_waves`): the starts in one unit of work, the worker's group commits, the
    approvals, the worker again."""
    # Imported here: each child imports only the engine it counts (from the checkout under test).
    from bench.approval_waves import run_flow, run_wave, wave_worker
    from durable_graph.backends.local import local_backend
    from examples.email_approval import graph as email_graph

    try:
        from durable_graph.backends.local.file_copies import COPIES

        COPIES.batch_seconds = BATCH_SECONDS
    except ImportError:  # a release that wrote the copies on the step's own thread
        pass
    backend = local_backend(root)
    app = email_graph.with_backend(backend)

    def one_by_one(ids: range) -> None:
        for i in ids:
            run_flow(app, f"tx-{i}", f"pay supplier {i}")

    def in_flight(ids: range) -> None:
        run_wave(app, wave_worker(app, len(ids)), [f"tx-{i}" for i in ids])

    def outcome(i: int) -> Any:
        return app.get_state(f"tx-{i}").values["outcome"]

    return (in_flight if group else one_by_one), outcome, backend.close


def _langgraph(root: Path) -> Flow:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from bench.langgraph_email import langgraph_email_graph

    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(root / "langgraph.db"), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    graph = langgraph_email_graph(root / "sent").compile(
        checkpointer=saver, interrupt_before=["human_review"]
    )

    def one_by_one(ids: range) -> None:
        for i in ids:
            config: Any = {"configurable": {"thread_id": f"tx-{i}"}}
            graph.invoke({"user_prompt": f"pay supplier {i}"}, config, durability="sync")
            graph.update_state(config, {"approved": True}, as_node="human_review")
            graph.invoke(None, config, durability="sync")

    def outcome(i: int) -> Any:
        return graph.get_state({"configurable": {"thread_id": f"tx-{i}"}}).values["outcome"]

    return one_by_one, outcome, conn.close


FLOWS: dict[str, Callable[[Path], Flow]] = {
    "durable-graph": _durable_graph,
    "durable-graph-group": lambda root: _durable_graph(root, group=True),
    "langgraph-sync": _langgraph,
}


def counted_run(name: str, root: Path, threads: int) -> None:
    """In the child under callgrind: open the store, run `WARM` threads (imports, caches,
    first-use work), zero the counters, run `threads` threads, dump the counters."""
    run, outcome, close = FLOWS[name](root)
    run(range(WARM))
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    run(range(WARM, WARM + threads))
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    assert outcome(WARM + threads - 1) == "sent"
    close()


def count(name: str, threads: int, source: Path | None) -> float | None:
    """Instructions per counted thread of engine `name` (durable-graph from `source`, another
    checkout, when given), or None when it failed."""
    env = child_env(source)
    base = TMPFS if TMPFS.is_dir() else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--child", name, "--threads", str(threads),
            "--root", str(Path(tmp) / "store"),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        dumps = sorted(Path(tmp).glob("callgrind.out.*"))  # .1: the dump of the counted part
        if done.returncode != 0 or not dumps:
            print(f"({name} failed: {done.stderr.strip()[-500:]})")
            return None
        summary = re.search(r"^summary: (\d+)", dumps[0].read_text(), re.MULTILINE)
        return int(summary.group(1)) / threads if summary else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20, help="threads counted per engine")
    parser.add_argument("--previous", type=Path, help="another checkout's durable-graph too")
    parser.add_argument(
        "--group", action="store_true", help=f"also {IN_FLIGHT} threads in flight (group commit)"
    )
    parser.add_argument("--child", choices=sorted(FLOWS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        counted_run(args.child, args.root, args.threads)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (callgrind) is not installed: apt-get install valgrind")
        return
    rows: list[tuple[str, float | None]] = [
        ("durable-graph (this checkout)", count("durable-graph", args.threads, None))
    ]
    if args.previous is not None:
        previous = count("durable-graph", args.threads, args.previous.resolve())
        rows.append((f"durable-graph ({args.previous})", previous))
    if args.group:
        flight = f"group commit, {IN_FLIGHT} in flight"
        rows.append((flight, count("durable-graph-group", IN_FLIGHT, None)))
        if args.previous is not None:
            previous = count("durable-graph-group", IN_FLIGHT, args.previous.resolve())
            rows.append((f"{flight} ({args.previous})", previous))
    try:
        import langgraph  # noqa: F401
    except ImportError:
        print("langgraph not installed, skipped (pip install -e '.[bench]')")
    else:
        rows.append(("LangGraph SqliteSaver (sync)", count("langgraph-sync", args.threads, None)))
    counted = f"{args.threads} threads each" + (f", {IN_FLIGHT} in flight" if args.group else "")
    print(f"\nInstructions per warm approval thread (callgrind, {counted})\n")
    print(f"{'engine':48s}{'instructions':>13s}{'vs this checkout':>18s}")
    ours = rows[0][1]
    for name, value in rows:
        cell = f"{value / 1e6:12.2f}M" if value is not None else f"{'-':>13s}"
        ratio = f"{value / ours:17.3f}x" if value and ours else f"{'-':>18s}"
        print(f"{name:48s}{cell}{ratio}")


if __name__ == "__main__":
    main()
