"""The storage floor of durable-graph's approval flow: the SQL statements one approval thread
makes, replayed alone on the same kind of store, with nothing of the engine around them.

`bench/approval_throughput.py` runs it beside the engines, in every round, on the same disk.
What it answers: how fast could the flow go one thread at a time if the engine's own work
(running nodes, validating state, hashing, signing, building records) cost nothing, and the
store did exactly what it does now. Set beside LangGraph's measured threads/s, it is the most
any engine writing these rows could reach; `fsync_floor` gives the looser bound of the fsyncs
alone (a one-page fsync, no statement, no page written).

How: one thread's flow (run → suspend → approve → complete) runs on a real store, after a few
warm-up threads, with SQLite's trace callback recording every statement as executed (values
bound in). The thread's id, `floor-0000000`, is then replaced by `floor-<i>` (the same length:
every row is the bytes the engine wrote) for each replayed thread, and so are the mail
idempotency keys. A queue message's rowid and receipt replay as recorded: the queue is empty
between two threads, so each replayed message takes the recorded id, and its receipt (that id
and the recorded lease token) is the recorded one too. The replay
runs on one connection with the store's own settings (WAL, `synchronous=NORMAL`, 4 KB pages)
and, as `Database` does (`_sync_through`), fdatasyncs the WAL after each COMMIT not relaxed.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.approval_waves import run_flow
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.commit_count import DurableCommits
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from examples.email_approval import graph as email_graph

STATEMENTS = "durable-graph-statements"  # its name among the benchmark's runs
STORE_FILE = "state.db"  # the embedded store's database file in its folder
RECORDED = "floor-0000000"  # the recorded thread's id; replayed as floor-<i>, the same length
WARM_UP = 3  # threads run before the recorded one (the store's tables exist and have rows)

_MAIL_KEY = re.compile(r"(INTO mail \(key, body\) VALUES \(')([0-9a-f]+)'")


def record_flow(root: Path) -> list[str]:
    """Every statement, bound, of one approval thread's flow on a new store in `root`."""
    backend = local_backend(root)
    app = email_graph.with_backend(backend)
    for i in range(WARM_UP):
        run_flow(app, f"warm-{i}", f"pay supplier {i}")
    statements: list[str] = []
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)  # the embedded store's: its Database traces
    db = queue.db
    db.trace(statements.append)
    run_flow(app, RECORDED, "pay supplier floor")
    db.trace(None)
    if app.get_state(RECORDED).values.get("outcome") != "sent":
        raise RuntimeError("the recorded flow did not complete")
    backend.close()
    return statements


def for_thread(statements: list[str], i: int) -> list[str]:
    """The recorded statements as thread `i`'s (see the module docstring)."""
    tid = f"floor-{i:07d}"
    if len(tid) != len(RECORDED):
        raise ValueError(f"thread {i}: ids stay {len(RECORDED)} characters")
    replayed = []
    for statement in statements:
        text = statement.replace(RECORDED, tid)
        text = _MAIL_KEY.sub(lambda m: f"{m.group(1)}{m.group(2)[:-7]}{i:07d}'", text)
        replayed.append(text)
    return replayed


def replay(statements: list[str], threads: int, path: Path) -> tuple[float, float, int]:
    """Run `statements` as `threads` threads' on the store at `path` (which the recorded flow
    created); wall seconds, CPU seconds and durable commits, of the replay only."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")  # as `Database`: it syncs the WAL itself
    wal = -1
    durable = 0
    batches = [for_thread(statements, 1 + i) for i in range(threads)]  # built before timing
    try:
        conn.execute("SELECT 1 FROM threads LIMIT 1").fetchall()  # the WAL exists from here
        wal = os.open(f"{path}-wal", os.O_RDONLY)
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            for text in batch:
                conn.execute(text)
                if text == "COMMIT":  # a durable one: `Database._sync_through`
                    os.fdatasync(wal)
                    durable += 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if wal >= 0:
            os.close(wal)
        conn.close()
    return wall, cpu, durable


def commits_of(statements: list[str]) -> tuple[int, int]:
    """(durable, relaxed) COMMITs of the recorded statements, told apart as the benchmarks
    tell them in a live trace (`DurableCommits`)."""
    counter = DurableCommits()
    for statement in statements:
        counter(statement)
    return counter.durable, counter.relaxed


def statement_floor(threads: int, root: Path) -> dict[str, Any]:
    """Record one thread's flow on a new store in `root`, replay it as `threads` threads'
    there: the fields of the benchmark's `Result` (but its bytes on disk)."""
    statements = record_flow(root / "store")
    wall, cpu, durable = replay(statements, threads, root / "store" / STORE_FILE)
    _, relaxed = commits_of(statements)
    return {
        "name": f"durable-graph's {len(statements)} statements alone (no engine)",
        "threads": threads,
        "seconds": wall,
        "cpu_seconds": cpu,
        "commits": durable + relaxed * threads,
        "durable": durable,
    }


def floor_line(per_second: float, cpu_ms: float, langgraph_per_second: float | None) -> str:
    """The line the benchmark prints: the replay's threads/s and CPU, and what it bounds."""
    line = (
        f"storage floor: durable-graph's statements of one approval thread replayed alone, "
        f"with its fsyncs and no engine (bench/statement_floor.py): {per_second:.0f} threads/s, "
        f"{1000 / per_second:.2f} ms a thread ({cpu_ms:.2f} ms CPU)"
    )
    if langgraph_per_second:
        line += f" = {per_second / langgraph_per_second:.2f}x LangGraph sync at zero engine CPU"
    return line
