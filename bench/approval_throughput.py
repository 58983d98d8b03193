"""The seed's approval flow (run → suspend → approve → complete), N threads, on durable-graph's
embedded store, on LangGraph + SqliteSaver and on DBOS (SQLite), in the same run, on the same
disk, in interleaved rounds (each round runs every engine once, in turn, on fresh files).

Prints threads per second, CPU milliseconds per thread (process time, every thread of the
process), bytes on disk per thread, and fsyncs per thread, side by side, with the ratio.
durable-graph commits every step durably (WAL, synchronous=FULL) before the next is scheduled.
LangGraph is measured with `durability="sync"` (each checkpoint written before the next step;
the fair comparison) and with its default (`"async"`). DBOS runs the flow as a workflow whose
two steps are checkpointed and whose approval arrives through `DBOS.send` / `DBOS.recv`.

fsyncs are counted, not estimated: with `strace` on the machine, each engine runs once more in
a child process under `strace -f -c -e trace=fsync,fdatasync` (a separate pass: tracing slows
it, so it is not the timed run); without strace the column says so.

`--previous DIR` adds the durable-graph of another checkout (an earlier release, e.g. from
`git archive <tag> | tar -x -C DIR`) to every round, run in a child process that imports it, so
before and after are measured side by side too.

`durable-graph (group commit, 100 in flight)` runs the same flow 100 threads at a time through
one worker (`Worker.handle_group`): the steps of every task it leased commit in one transaction
and one fsync, each acknowledged and followed only once that transaction is durable.

    .venv/bin/python bench/approval_throughput.py [--threads 200] [--rounds 3] [--previous DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dbos_approval import approval_workflow
from bench.langgraph_email import langgraph_email_graph
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from examples.email_approval import graph as email_graph

FSYNC_THREADS = 50  # threads per engine in the strace pass
PREVIOUS = "durable-graph (previous)"

try:
    from durable_graph.backends.local.db import DurableCommits as CommitCounter
except ImportError:  # a release before relaxed writes (`--previous`): every commit is durable

    class CommitCounter:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self.durable = 0

        def __call__(self, statement: str) -> None:
            self.durable += statement.lstrip().upper().startswith("COMMIT")


@dataclass
class Result:
    name: str
    threads: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    bytes_on_disk: int = 0
    commits: int = 0
    fsyncs: float | None = None  # per thread, from the strace pass

    @property
    def per_second(self) -> float:
        return self.threads / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.threads

    def add(self, other: Result) -> None:
        self.threads += other.threads
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.bytes_on_disk += other.bytes_on_disk
        self.commits += other.commits


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class Timer:
    """Wall and process time of one timed section."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


# ---------------------------------------------------------------- durable-graph


def bench_durable_graph(threads: int, root: Path) -> Result:
    backend = local_backend(root)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    counter = CommitCounter()  # durable (fsynced) commits; relaxed ones are not counted
    queue.db.trace(counter)
    app = email_graph.with_backend(backend)
    with Timer() as timer:
        for i in range(threads):
            tid = f"tx-{i}"
            app.invoke({"user_prompt": f"pay supplier {i}"}, thread_id=tid)
            app.resume(tid, values={"approved": True}, as_node="human_review")
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    return Result(
        "durable-graph (embedded)",
        threads,
        timer.wall,
        timer.cpu,
        folder_bytes(root),
        counter.durable,
    )


def bench_group_commit(threads: int, root: Path, in_flight: int = 100) -> Result:
    """The same flow, `in_flight` threads at a time in one process (a worker with
    `concurrency=in_flight`): each wave's starts are one unit of work, the worker runs every
    leased task and commits their steps together (`Worker.handle_group`: one transaction, one
    fsync for the whole batch, nothing acknowledged before it is durable), then the wave's
    approvals are one unit of work and the worker runs the sends the same way."""
    backend = local_backend(root)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    counter = CommitCounter()
    queue.db.trace(counter)
    app = email_graph.with_backend(backend)
    worker = app.worker(concurrency=in_flight)
    with Timer() as timer:
        for first in range(0, threads, in_flight):
            wave = [f"tx-{i}" for i in range(first, min(first + in_flight, threads))]
            with backend.atomic():
                for tid in wave:
                    app.start({"user_prompt": f"pay supplier {tid}"}, thread_id=tid)
            worker.run(until_idle=True)
            with backend.atomic():
                for tid in wave:
                    app.resume(tid, values={"approved": True}, as_node="human_review", run=False)
            worker.run(until_idle=True)
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    return Result(
        f"durable-graph (group commit, {in_flight} in flight)",
        threads,
        timer.wall,
        timer.cpu,
        folder_bytes(root),
        counter.durable,
    )


# ---------------------------------------------------------------- LangGraph


def bench_langgraph(threads: int, root: Path, durability: Any) -> Result:
    from langgraph.checkpoint.sqlite import SqliteSaver

    builder = langgraph_email_graph(root / "sent")

    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(root / "langgraph.db"), check_same_thread=False)
    commits = 0

    def trace(statement: str) -> None:
        nonlocal commits
        if statement.strip().upper().startswith("COMMIT"):
            commits += 1

    conn.set_trace_callback(trace)
    saver = SqliteSaver(conn)
    saver.setup()
    graph = builder.compile(checkpointer=saver, interrupt_before=["human_review"])
    with Timer() as timer:
        for i in range(threads):
            config: Any = {"configurable": {"thread_id": f"tx-{i}"}}
            graph.invoke({"user_prompt": f"pay supplier {i}"}, config, durability=durability)
            graph.update_state(config, {"approved": True}, as_node="human_review")
            graph.invoke(None, config, durability=durability)
    last = graph.get_state({"configurable": {"thread_id": f"tx-{threads - 1}"}})
    assert last.values["outcome"] == "sent"
    conn.close()
    return Result(
        f"LangGraph SqliteSaver ({durability})",
        threads,
        timer.wall,
        timer.cpu,
        folder_bytes(root),
        commits,
    )


# ---------------------------------------------------------------- DBOS


def bench_dbos(threads: int, root: Path) -> Result:
    """The flow as a DBOS workflow on SQLite: a checkpointed draft step, `DBOS.recv` for the
    approval (sent with `DBOS.send`), then a checkpointed send step."""
    from dbos import DBOS

    root.mkdir(parents=True, exist_ok=True)
    sent = root / "sent"
    sent.mkdir(exist_ok=True)
    DBOS(
        config={
            "name": "approval-bench",
            "system_database_url": f"sqlite:///{root / 'dbos.sqlite'}",
        }
    )

    approval = approval_workflow(sent)

    DBOS.launch()
    try:
        with Timer() as timer:
            for i in range(threads):
                handle = DBOS.start_workflow(approval, f"pay supplier {i}")
                DBOS.send(handle.workflow_id, True, "approval")
                assert handle.get_result() == "sent"
    finally:
        DBOS.destroy(destroy_registry=True)
    return Result("DBOS 3 (SQLite)", threads, timer.wall, timer.cpu, folder_bytes(root), 0)


# ---------------------------------------------------------------- running

ENGINES: dict[str, Callable[[int, Path], Result]] = {
    "durable-graph": bench_durable_graph,
    "durable-graph-group": bench_group_commit,
    "langgraph-sync": lambda n, root: bench_langgraph(n, root, "sync"),
    "langgraph-async": lambda n, root: bench_langgraph(n, root, "async"),
    "dbos": bench_dbos,
}


def bench_previous(threads: int, root: Path, source: Path) -> Result:
    """durable-graph from another checkout (`--previous`), in a child process importing it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source / "shared"), str(source)])}
    command = [sys.executable, __file__, "--engine", "durable-graph", "--json"]
    command += ["--threads", str(threads), "--root", str(root)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    fields = json.loads(done.stdout.strip().splitlines()[-1])
    fields.update(name=PREVIOUS, fsyncs=None)
    return Result(**fields)


def available(name: str) -> bool:
    module = {"langgraph-sync": "langgraph", "langgraph-async": "langgraph", "dbos": "dbos"}
    wanted = module.get(name)
    if wanted is None:
        return True
    try:
        __import__(wanted)
    except ImportError:
        return False
    return True


def count_fsyncs(name: str, threads: int, source: Path | None = None) -> float | None:
    """fsync + fdatasync calls per thread of one engine, run alone in a child under strace
    (durable-graph from `source`, another checkout, when given)."""
    if shutil.which("strace") is None:
        return None
    command = [
        "strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync",
        sys.executable, __file__, "--engine", name, "--threads", str(threads),
    ]  # fmt: skip
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source / "shared"), str(source)])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"(fsync count of {name} failed: {done.stderr.strip()[-300:]})")
        return None
    calls = 0
    for line in done.stderr.splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)$", line)
        if match:
            calls += int(match.group(1))
    return calls / threads


def run_once(name: str, threads: int, root: Path | None, as_json: bool) -> None:
    """`--engine`: run one engine once (the strace pass and `--previous` run this in a child)."""
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        result = ENGINES[name](threads, root or Path(tmp) / name)
    if as_json:
        print(json.dumps(dataclasses.asdict(result)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=200, help="threads per engine per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=sorted(ENGINES), help="run one engine once, quietly")
    parser.add_argument("--no-fsync-count", action="store_true")
    parser.add_argument(
        "--previous",
        type=Path,
        help="a checkout of an earlier release: its durable-graph runs in every round too",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        run_once(args.engine, args.threads, args.root, args.json)
        return
    names = [n for n in ENGINES if available(n)]
    if args.previous is not None:
        source = args.previous.resolve()
        ENGINES[PREVIOUS] = lambda n, root: bench_previous(n, root, source)
        names.insert(1, PREVIOUS)
    missing = sorted(set(ENGINES) - set(names))
    if missing:
        print(f"not installed, skipped: {missing} (pip install -e '.[bench]')")
    totals = {name: Result(name) for name in names}
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for round_ in range(args.rounds):
            for name in names:  # interleaved: every engine once per round, in turn
                result = ENGINES[name](args.threads, Path(tmp) / f"{name}-{round_}")
                totals[name].name = result.name
                totals[name].add(result)
    if not args.no_fsync_count:
        for name in names:
            if name == PREVIOUS and args.previous is not None:
                totals[name].fsyncs = count_fsyncs(
                    "durable-graph", FSYNC_THREADS, args.previous.resolve()
                )
            else:
                totals[name].fsyncs = count_fsyncs(name, FSYNC_THREADS)
    results = [totals[name] for name in names]
    print(
        f"\nApproval flow (run → suspend → approve → complete), {args.threads} threads x "
        f"{args.rounds} interleaved rounds\n"
    )
    header = (
        f"{'engine':<46}{'threads/s':>10}{'CPU ms/thread':>15}{'fsyncs/thread':>15}"
        f"{'bytes/thread':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        fsyncs = f"{r.fsyncs:.1f}" if r.fsyncs is not None else "(no strace)"
        print(
            f"{r.name:<46}{r.per_second:>10.1f}{r.cpu_ms:>15.2f}{fsyncs:>15}"
            f"{r.bytes_on_disk / r.threads:>14.0f}"
        )
    ours = [r for r in results if r.name.startswith("durable-graph") and r.name != PREVIOUS]
    for r in ours:
        print(f"\n{r.name}: {r.commits / r.threads:.2f} durable commits per thread")
    for mine in ours:
        print()
        for r in results:
            if r in ours:
                continue
            print(
                f"{mine.name} vs {r.name}: {mine.per_second / r.per_second:.2f}x throughput, "
                f"{r.cpu_ms / mine.cpu_ms:.2f}x less CPU per thread"
            )


if __name__ == "__main__":
    main()
