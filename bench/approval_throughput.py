"""The seed's approval flow (run → suspend → approve → complete), N threads, on durable-graph's
embedded store, on LangGraph + SqliteSaver and on DBOS (SQLite), in the same run, on the same
disk, in interleaved rounds (each round runs every engine once, in turn, on fresh files).

Prints threads per second, CPU milliseconds per thread (process time, every thread of the
process), bytes on disk per thread, and fsyncs per thread, side by side, with the ratio.
durable-graph commits every step durably (WAL, synchronous=FULL) before the next is scheduled.
LangGraph is measured with `durability="sync"` (each checkpoint written before the next step;
the fair comparison) and with its default (`"async"`). DBOS runs the flow as a workflow whose
two steps are checkpointed and whose approval arrives through `DBOS.send` / `DBOS.recv`.

I/O is counted, not estimated: with `strace` on the machine, each engine runs once more in a
child process under `strace -f -y -e trace=fsync,fdatasync,pwrite64,write` (a separate pass:
tracing slows it, so it is not the timed run; without strace the columns say so). From it:
fsyncs per thread (fsync + fdatasync), WAL pages per thread (each WAL frame is a 24-byte
header write then a page write: the headers are counted), WAL KB per thread, and every byte
the process wrote to any file (WAL, database, checkpoints, outbox copies), per thread. These
counts do not depend on the machine's load, unlike threads/s; a commit fsyncs what it appended
to the WAL, so fewer WAL pages per commit is less for the disk to flush. `commits/thread`
counts every COMMIT of the timed run (durable-graph: durable and relaxed ones, see db.py),
and `WAL pages/commit` divides the two.

CPU is measured twice: in the timed rounds (on the disk: it includes what an engine spends
around its fsyncs, e.g. LangGraph's thread pool waking up) and in a separate pass per engine on
tmpfs (`/dev/shm`, where an fsync costs nothing), best of two runs of `CPU_THREADS` threads in
a child process: the second is the engine's own work, and much less noisy on a loaded machine.

Every timed run, of every engine, is a fresh child process (this file with `--engine`), so no
engine is measured in a process that another engine has used. Measured in the parent process
after LangGraph and DBOS had run there, durable-graph took 10-13% more CPU per thread than in a
child of its own (2.82 against 2.50 ms on tmpfs, 3 runs each), while callgrind counted the same
instructions per warm thread in both (210.8M and 211.1M for 20 threads) and the same simulated
cache misses (D1 2.43M and 2.41M): the work was the same; what made it slower is outside what
callgrind models (page faults, TLB, the layout of a heap two other engines had filled and left)
and was not pinned down. Importing LangGraph and DBOS without running them changed neither.
The child's start-up and imports are outside the timed section.

`--previous DIR` adds the durable-graph of another checkout (an earlier release, e.g. from
`git archive <tag> | tar -x -C DIR`) to every round, run the same way in a child process that
imports it, so before and after are measured side by side too.

The ceiling, measured in the same run: before each round, 100 fdatasyncs of a 4 KB page in the
rounds' folder (`bench/fsync_floor.py`); their median is what one fsync costs on this disk now.
Printed under the ratios: the most threads/s any engine doing 4 fsyncs per thread (the budget's
4 durable commits) could reach one thread at a time at zero CPU, and the CPU per thread each
durable-graph row could spend, beside the fsyncs it measured, and still run at 4x LangGraph
sync's measured threads/s (`1 / (4 x LangGraph's threads/s) - fsyncs x fsync cost`): where the
fsyncs alone take longer, 4x one thread at a time is out of reach on this disk at any CPU.

`durable-graph (group commit, 100 in flight)` runs the same flow 100 threads at a time through
one worker (`Worker.handle_group`): the steps of every task it leased commit in one transaction
and one fsync, each acknowledged and followed only once that transaction is durable. Its tasks
run in turn on the worker's thread (`threads=1`): the flow's nodes wait on no network, and on a
pool of 100 threads they only took turns at the interpreter's and the connection's locks.
It is set beside baselines that have as many threads in flight, in the same rounds (the rows
saying 100): LangGraph + SqliteSaver (`durability="sync"`) driven by a pool of 100 OS threads,
each running one flow at a time on the one saver and connection (`check_same_thread=False`, as
SqliteSaver's docstring allows: it holds a lock around each use); LangGraph + AsyncSqliteSaver
(`durability="sync"`) with 100 flows awaited at once on one event loop (`ainvoke`,
`aupdate_state`); DBOS with waves of 100 workflows in flight. `durable-graph (100 OS threads)`
runs the flow as that LangGraph row does, a pool of 100 OS threads each calling `invoke` and
`resume` for one flow at a time on one backend: no batching, each commit its own, their fsyncs
shared across the threads (db.py). (The `(async)` row is LangGraph's
`durability="async"` on SqliteSaver, one thread at a time: not AsyncSqliteSaver.) Each of our
rows is then set against the best baseline in each column: the fastest, the cheapest in CPU,
the fewest fsyncs, whichever engine that is. `--quick` is a smoke run (20 threads everywhere).

    .venv/bin/python bench/approval_throughput.py [--threads 200] [--rounds 3] [--previous DIR]
    .venv/bin/python bench/approval_throughput.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.approval_waves import run_flow, run_wave, wave_worker
from bench.child_env import child_env
from bench.dbos_approval import approval_workflow
from bench.fsync_floor import ceiling_lines, fsync_samples
from bench.langgraph_email import langgraph_email_graph
from bench.statement_floor import STATEMENTS, floor_line, statement_floor
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from examples.email_approval import graph as email_graph

FSYNC_THREADS = 50  # threads per engine in the strace pass
CPU_THREADS = 200  # threads per run of the tmpfs CPU pass
QUICK_THREADS = 20  # every pass of `--quick`
TMPFS = Path("/dev/shm")
IN_FLIGHT = 100  # threads in flight in the group-commit row and the baselines set beside it
PREVIOUS = "durable-graph (previous)"

try:
    from durable_graph.backends.local.commit_count import DurableCommits as CommitCounter
except ImportError:  # a release before relaxed writes (`--previous`): every commit is durable

    class CommitCounter:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self.durable = 0

        def __call__(self, statement: str) -> None:
            self.durable += statement.lstrip().upper().startswith("COMMIT")


@dataclass
class IoCounts:
    """Per-thread system-call counts of one engine's strace pass."""

    fsyncs: float
    wal_pages: float
    wal_bytes: float
    written_bytes: float  # every write and pwrite to any file


@dataclass
class Result:
    name: str
    threads: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    bytes_on_disk: int = 0
    commits: int = 0  # every COMMIT (durable or relaxed)
    durable: int = 0  # COMMITs with an fsync (durable-graph; the others fsync every commit)
    io: IoCounts | None = None  # per thread, from the strace pass
    cpu_tmpfs: float | None = None  # ms per thread, from the tmpfs pass

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
        self.durable += other.durable


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


def _durable_graph_flow(app: Any, i: int) -> None:
    """Thread `tx-{i}`'s flow, as a caller runs it (`approval_waves.run_flow`)."""
    run_flow(app, f"tx-{i}", f"pay supplier {i}")


def bench_durable_graph(threads: int, root: Path, in_flight: int = 1) -> Result:
    """The flow one thread at a time, or (`in_flight` > 1) from a pool of that many OS threads
    each running one flow at a time on the one backend, as a web server's request threads
    would (and as the LangGraph row with as many OS threads does): their commits' fsyncs are
    shared (db.py's group sync), where the group-commit row batches steps in one worker."""
    backend = local_backend(root)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    counter = CommitCounter()  # durable (fsynced) commits; relaxed ones are not counted
    queue.db.trace(counter)
    app = email_graph.with_backend(backend)
    with Timer() as timer:
        if in_flight == 1:
            for i in range(threads):
                _durable_graph_flow(app, i)
        else:
            with ThreadPoolExecutor(max_workers=in_flight) as pool:
                list(pool.map(lambda i: _durable_graph_flow(app, i), range(threads)))
    sent = [app.get_state(f"tx-{i}").values.get("outcome") for i in range(threads)]
    assert sent == ["sent"] * threads, f"{sent.count('sent')} of {threads} threads sent"
    backend.close()
    return Result(
        "durable-graph (embedded)" if in_flight == 1 else f"durable-graph ({in_flight} OS threads)",
        threads,
        timer.wall,
        timer.cpu,
        folder_bytes(root),
        counter.durable + getattr(counter, "relaxed", 0),
        counter.durable,
    )


def bench_group_commit(threads: int, root: Path, in_flight: int = IN_FLIGHT) -> Result:
    """The same flow, `in_flight` threads at a time in one process (`approval_waves`): each
    wave's starts are one unit of work, the worker runs every leased task, in turn on its own
    thread, and commits their steps together (`Worker.handle_group`: one transaction, one
    fsync for the whole batch, nothing acknowledged before it is durable), then the wave's
    approvals are one unit of work and the worker runs the sends the same way."""
    backend = local_backend(root)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    counter = CommitCounter()
    queue.db.trace(counter)
    app = email_graph.with_backend(backend)
    worker = wave_worker(app, in_flight)
    with Timer() as timer:
        for first in range(0, threads, in_flight):
            wave = [f"tx-{i}" for i in range(first, min(first + in_flight, threads))]
            run_wave(app, worker, wave)
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    return Result(
        f"durable-graph (group commit, {in_flight} in flight)",
        threads,
        timer.wall,
        timer.cpu,
        folder_bytes(root),
        counter.durable + counter.relaxed,
        counter.durable,
    )


# ---------------------------------------------------------------- LangGraph


def _langgraph_steps(i: int, durability: Any) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Thread `tx-{i}`'s approval flow on LangGraph as (method, args, kwargs) calls: run to the
    interrupt, approve as the reviewer, run to the end. The async rows call the `a`-prefixed
    twin of each method (`ainvoke`, `aupdate_state`), so both drive the same sequence."""
    config: Any = {"configurable": {"thread_id": f"tx-{i}"}}
    return [
        ("invoke", ({"user_prompt": f"pay supplier {i}"}, config), {"durability": durability}),
        ("update_state", (config, {"approved": True}), {"as_node": "human_review"}),
        ("invoke", (None, config), {"durability": durability}),
    ]


def _langgraph_flow(graph: Any, i: int, durability: Any) -> None:
    for method, args, kwargs in _langgraph_steps(i, durability):
        getattr(graph, method)(*args, **kwargs)


def _langgraph_db(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root / "langgraph.db"


def langgraph_completed(root: Path, threads: int) -> int:
    """How many of threads `tx-0`..`tx-{threads - 1}` in `root`'s LangGraph database ended
    sent, with nothing left to run: read back after the timed section, on a connection of
    its own (so an async row is checked by the sync saver, not by itself)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(_langgraph_db(root)))
    try:
        graph = langgraph_email_graph(root / "sent").compile(checkpointer=SqliteSaver(conn))
        states = [graph.get_state({"configurable": {"thread_id": f"tx-{i}"}}) for i in
                  range(threads)]  # fmt: skip
    finally:
        conn.close()
    return sum(s.values.get("outcome") == "sent" and not s.next for s in states)


def _langgraph_result(name: str, threads: int, root: Path, timer: Timer, commits: int) -> Result:
    completed = langgraph_completed(root, threads)
    assert completed == threads, f"{name}: {completed} of {threads} threads sent"
    return Result(name, completed, timer.wall, timer.cpu, folder_bytes(root), commits, commits)


def bench_langgraph(threads: int, root: Path, durability: Any, in_flight: int = 1) -> Result:
    """LangGraph + SqliteSaver, one thread at a time, or (`in_flight` > 1) a pool of that many
    OS threads each running one flow at a time, all on one saver and one connection (its lock
    makes that safe, as SqliteSaver's docstring says, with `check_same_thread=False`)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(_langgraph_db(root)), check_same_thread=False)
    counter = CommitCounter()
    conn.set_trace_callback(counter)
    saver = SqliteSaver(conn)
    saver.setup()
    builder = langgraph_email_graph(root / "sent")
    graph = builder.compile(checkpointer=saver, interrupt_before=["human_review"])
    with Timer() as timer:
        if in_flight == 1:
            for i in range(threads):
                _langgraph_flow(graph, i, durability)
        else:
            with ThreadPoolExecutor(max_workers=in_flight) as pool:
                list(pool.map(lambda i: _langgraph_flow(graph, i, durability), range(threads)))
    conn.close()
    name = f"LangGraph SqliteSaver ({durability})"
    if in_flight > 1:
        name = f"LangGraph SqliteSaver ({durability}, {in_flight} OS threads)"
    return _langgraph_result(name, threads, root, timer, counter.durable)


def bench_langgraph_aio(threads: int, root: Path, in_flight: int = IN_FLIGHT) -> Result:
    """LangGraph + AsyncSqliteSaver (`durability="sync"`), `in_flight` flows awaited at once
    on one event loop (`ainvoke`, `aupdate_state`), on one saver and one aiosqlite connection.
    The event loop's start and the connection's opening are outside the timed section."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    counter = CommitCounter()
    timer = Timer()

    async def flows() -> None:
        async with aiosqlite.connect(str(_langgraph_db(root))) as conn:
            await conn.set_trace_callback(counter)
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            builder = langgraph_email_graph(root / "sent")
            graph = builder.compile(checkpointer=saver, interrupt_before=["human_review"])
            slots = asyncio.Semaphore(in_flight)

            async def flow(i: int) -> None:
                async with slots:
                    for method, args, kwargs in _langgraph_steps(i, "sync"):
                        await getattr(graph, "a" + method)(*args, **kwargs)

            with timer:
                await asyncio.gather(*(flow(i) for i in range(threads)))

    asyncio.run(flows())
    name = f"LangGraph AsyncSqliteSaver (sync, {in_flight} ainvoke)"
    return _langgraph_result(name, threads, root, timer, counter.durable)


# ---------------------------------------------------------------- DBOS


def bench_dbos(threads: int, root: Path, in_flight: int = 1) -> Result:
    """The flow as a DBOS workflow on SQLite: a checkpointed draft step, `DBOS.recv` for the
    approval (sent with `DBOS.send`), then a checkpointed send step. In waves of `in_flight`
    workflows: start them all (each runs on DBOS's executor, up to its `recv`), send each its
    approval, wait for every result; `in_flight=1` is one thread at a time. On SQLite a
    waiting `recv` is woken by a poll (`notification_listener_polling_interval_sec`, 1 s by
    default); at 0.1, 0.01 and 0.001 s, 100 in flight ran no faster (7-8 threads/s, on a
    machine loaded by other work; the 20 starts of a wave of 20 alone took 1 s, against 6 ms for
    one: where that goes was not pinned down)."""
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
    outcomes: list[str] = []
    try:
        with Timer() as timer:
            for first in range(0, threads, in_flight):
                wave = range(first, min(first + in_flight, threads))
                handles = [DBOS.start_workflow(approval, f"pay supplier {i}") for i in wave]
                for handle in handles:
                    DBOS.send(handle.workflow_id, True, "approval")
                outcomes += [handle.get_result() for handle in handles]
    finally:
        DBOS.destroy(destroy_registry=True)
    completed = outcomes.count("sent")
    assert completed == threads, f"DBOS: {completed} of {threads} workflows sent"
    name = "DBOS 3 (SQLite)" if in_flight == 1 else f"DBOS 3 (SQLite, {in_flight} in flight)"
    return Result(name, completed, timer.wall, timer.cpu, folder_bytes(root), 0)


# ---------------------------------------------------------------- running

ENGINES: dict[str, Callable[[int, Path], Result]] = {
    "durable-graph": bench_durable_graph,
    "durable-graph-group": bench_group_commit,
    "durable-graph-threads": lambda n, root: bench_durable_graph(n, root, IN_FLIGHT),
    "langgraph-sync": lambda n, root: bench_langgraph(n, root, "sync"),
    "langgraph-async": lambda n, root: bench_langgraph(n, root, "async"),
    "dbos": bench_dbos,
    # The baselines with as many threads in flight as the group-commit row, beside it.
    "langgraph-sync-threads": lambda n, root: bench_langgraph(n, root, "sync", IN_FLIGHT),
    "langgraph-aio": bench_langgraph_aio,
    "dbos-in-flight": lambda n, root: bench_dbos(n, root, IN_FLIGHT),
    # Not an engine: durable-graph's statements replayed alone (`bench/statement_floor.py`),
    # run in every round beside the engines and printed under the table, not in it.
    STATEMENTS: lambda n, root: Result(
        **statement_floor(n, root), bytes_on_disk=folder_bytes(root)
    ),
}


def run_in_child(name: str, threads: int, root: Path, source: Path | None = None) -> Result:
    """One timed run of engine `name` in a fresh child process (durable-graph imported from
    `source`, another checkout, when given): every engine is measured in a process of its own."""
    command = [sys.executable, __file__, "--engine", name, "--json"]
    command += ["--threads", str(threads), "--root", str(root)]
    done = subprocess.run(command, env=child_env(source), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed in its child process:\n{done.stderr.strip()[-2000:]}")
    fields = json.loads(done.stdout.strip().splitlines()[-1])
    fields.update(io=None, cpu_tmpfs=None)
    return Result(**fields)


def available(name: str) -> bool:
    """Whether the engine's package is installed (looked up, not imported: the parent runs no
    engine and keeps none of their modules)."""
    wanted = {"langgraph": ["langgraph"], "dbos": ["dbos"]}.get(name.split("-")[0], [])
    if name == "langgraph-aio":
        wanted.append("aiosqlite")
    return all(importlib.util.find_spec(module) is not None for module in wanted)


def cpu_without_disk(name: str, threads: int, source: Path | None = None) -> float | None:
    """CPU ms per thread of one engine on tmpfs (no fsync cost), best of two child runs."""
    if not TMPFS.is_dir():
        return None
    best: float | None = None
    for _ in range(2):
        with tempfile.TemporaryDirectory(dir=TMPFS) as tmp:
            command = [sys.executable, __file__, "--engine", name, "--json"]
            command += ["--threads", str(threads), "--root", str(Path(tmp) / name)]
            done = subprocess.run(
                command, env=child_env(source), capture_output=True, text=True, check=False
            )
        if done.returncode != 0:
            print(f"(tmpfs CPU pass of {name} failed: {done.stderr.strip()[-300:]})")
            return None
        fields = json.loads(done.stdout.strip().splitlines()[-1])
        ms = 1000 * fields["cpu_seconds"] / fields["threads"]
        best = ms if best is None else min(best, ms)
    return best


# One traced call: `<pid> <call>(<fd><<path>>, ...) = <result>` (strace -f -y).
_TRACED = re.compile(r"\d+\s+(fsync|fdatasync|pwrite64|write)\(\d+<([^>]*)>.*\)\s+=\s+(-?\d+)")


def count_io(name: str, threads: int, source: Path | None = None) -> IoCounts | None:
    """fsyncs, WAL pages and bytes written per thread of one engine, run alone in a child
    under strace (durable-graph from `source`, another checkout, when given)."""
    if shutil.which("strace") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "strace.log"
        command = [
            "strace", "-f", "-qq", "-y", "-o", str(log),
            "-e", "trace=fsync,fdatasync,pwrite64,write",
            sys.executable, __file__, "--engine", name, "--threads", str(threads),
        ]  # fmt: skip
        done = subprocess.run(
            command, env=child_env(source), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"(I/O count of {name} failed: {done.stderr.strip()[-300:]})")
            return None
        fsyncs = wal_pages = wal_bytes = written = 0
        with log.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                match = _TRACED.match(line)
                if match is None:
                    continue
                call, path, result = match.group(1), match.group(2), int(match.group(3))
                if call in ("fsync", "fdatasync"):
                    fsyncs += 1
                    continue
                if result <= 0 or not path.startswith("/"):  # a pipe, a socket, the terminal
                    continue
                written += result
                if path.endswith("-wal"):
                    wal_bytes += result
                    wal_pages += result == 24  # a frame header: one page follows it
    return IoCounts(fsyncs / threads, wal_pages / threads, wal_bytes / threads, written / threads)


def run_once(name: str, threads: int, root: Path | None, as_json: bool) -> None:
    """`--engine`: run one engine once (the strace pass and `--previous` run this in a child)."""
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        result = ENGINES[name](threads, root or Path(tmp) / name)
    if as_json:
        print(json.dumps(dataclasses.asdict(result)))


def print_table(results: list[Result]) -> None:
    width = max(44, 2 + max(len(r.name) for r in results))
    columns = [
        ("engine", width), ("threads/s", 10), ("CPU ms", 8), ("CPU tmpfs", 10), ("commits", 10),
        ("fsyncs", 8), ("WAL pages", 10), ("pages/commit", 13), ("WAL KB", 8),
        ("KB written", 11), ("disk KB", 8),
    ]  # fmt: skip
    header = "".join(f"{title:<{w}}" if i == 0 else f"{title:>{w}}" for i, (title, w) in
                     enumerate(columns))  # fmt: skip
    print(header + "\n" + "-" * len(header))
    for r in results:
        n = r.threads
        commits = (
            f"{r.durable / n:.2g}/{r.commits / n:.2g}"
            if r.commits != r.durable
            else (f"{r.commits / n:.1f}" if r.commits else "-")
        )
        io = r.io
        wal = io if io and io.wal_bytes else None  # DBOS's SQLite keeps a rollback journal
        cells = [
            r.name,
            f"{r.per_second:.1f}",
            f"{r.cpu_ms:.2f}",
            f"{r.cpu_tmpfs:.2f}" if r.cpu_tmpfs is not None else "-",
            commits,
            f"{io.fsyncs:.1f}" if io else "-",
            f"{wal.wal_pages:.1f}" if wal else "-",
            f"{wal.wal_pages * n / r.commits:.1f}" if wal and r.commits else "-",
            f"{wal.wal_bytes / 1024:.1f}" if wal else "-",
            f"{io.written_bytes / 1024:.1f}" if io else "-",
            f"{r.bytes_on_disk / n / 1024:.1f}",
        ]
        print("".join(f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}" for i, (cell, (_, w)) in
                      enumerate(zip(cells, columns, strict=True))))  # fmt: skip


def fold(ours: float, theirs: float, fewer: str, more: str) -> str:
    """How many times fewer (or more) of something we spend than they do, worded the right
    way round: `fold(1, 2, "fewer", "more")` is "2.00x fewer", `fold(2, 1, ...)` "2.00x more"
    (never "0.50x fewer"). Equal amounts are "1.00x fewer"."""
    if ours <= theirs:
        return f"{theirs / ours:.2f}x {fewer}"
    return f"{ours / theirs:.2f}x {more}"


def against_best(mine: Result, baselines: list[Result]) -> str:
    """`mine` against the best baseline in each column (the honest ratio: another engine may
    be fastest, a third cheapest): the most threads/s, the least CPU per thread (timed rounds,
    then tmpfs), the fewest fsyncs per thread, each naming the baseline it is."""
    fastest = max(baselines, key=lambda r: r.per_second)
    cheapest = min(baselines, key=lambda r: r.cpu_ms)
    line = (
        f"{mine.name} vs the best baseline: {mine.per_second / fastest.per_second:.2f}x "
        f"throughput ({fastest.name}), {fold(mine.cpu_ms, cheapest.cpu_ms, 'less', 'more')} "
        f"CPU per thread ({cheapest.name}"
    )
    on_tmpfs = [r for r in baselines if r.cpu_tmpfs]
    if mine.cpu_tmpfs and on_tmpfs:
        least = min(on_tmpfs, key=lambda r: r.cpu_tmpfs or 0.0)
        assert least.cpu_tmpfs is not None
        line += f"; {fold(mine.cpu_tmpfs, least.cpu_tmpfs, 'less', 'more')} on tmpfs: {least.name}"
    line += ")"
    traced = [r for r in baselines if r.io]
    if mine.io and mine.io.fsyncs and traced:
        fewest = min(traced, key=lambda r: r.io.fsyncs if r.io else 0.0)
        assert fewest.io is not None
        fsyncs = fold(mine.io.fsyncs, fewest.io.fsyncs, "fewer", "more")
        line += f", {fsyncs} fsyncs per thread ({fewest.name})"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=200, help="threads per engine per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=sorted(ENGINES), help="run one engine once, quietly")
    parser.add_argument("--no-fsync-count", action="store_true", help="skip the strace pass")
    parser.add_argument("--no-cpu-pass", action="store_true", help="skip the tmpfs CPU pass")
    parser.add_argument(
        "--previous",
        type=Path,
        help="a checkout of an earlier release: its durable-graph runs in every round too",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run, not a measurement: --threads {QUICK_THREADS} --rounds 1, and the "
        f"strace and tmpfs passes at {QUICK_THREADS} threads",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    fsync_threads, cpu_threads = FSYNC_THREADS, CPU_THREADS
    if args.quick:
        args.threads, args.rounds = QUICK_THREADS, 1
        fsync_threads = cpu_threads = QUICK_THREADS
    if args.engine:
        run_once(args.engine, args.threads, args.root, args.json)
        return
    names = [n for n in ENGINES if available(n) and n != STATEMENTS]
    sources: dict[str, Path | None] = dict.fromkeys(names)
    if args.previous is not None:
        names.insert(1, PREVIOUS)
        sources[PREVIOUS] = args.previous.resolve()
    missing = sorted(set(ENGINES) - set(names) - {STATEMENTS})
    if missing:
        print(f"not installed, skipped: {missing} (pip install -e '.[bench]')")
    totals = {name: Result(name) for name in names}
    fsyncs: list[float] = []  # seconds of each fdatasync probe, in the rounds' folder
    floor = Result(STATEMENTS)  # the statements alone, a run per round
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for round_ in range(args.rounds):
            fsyncs += fsync_samples(Path(tmp))  # the disk's fsync, in turn with the engines
            floor.add(run_in_child(STATEMENTS, args.threads, Path(tmp) / f"floor-{round_}"))
            for name in names:  # interleaved: every engine once per round, in turn
                engine = "durable-graph" if name == PREVIOUS else name
                root = Path(tmp) / f"{name}-{round_}"
                result = run_in_child(engine, args.threads, root, sources[name])
                totals[name].name = PREVIOUS if name == PREVIOUS else result.name
                totals[name].add(result)
    for name in names:
        engine = "durable-graph" if name == PREVIOUS else name
        if not args.no_fsync_count:
            totals[name].io = count_io(engine, fsync_threads, sources[name])
        if not args.no_cpu_pass:
            totals[name].cpu_tmpfs = cpu_without_disk(engine, cpu_threads, sources[name])
    results = [totals[name] for name in names]
    print(
        f"\nApproval flow (run → suspend → approve → complete), {args.threads} threads x "
        f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print_table(results)
    print(
        "\nthreads/s and CPU ms: the timed rounds. CPU tmpfs: the tmpfs pass (best of two runs of "
        f"{cpu_threads} threads).\ncommits: every COMMIT of the timed rounds "
        "(durable-graph:\nfsynced/all; relaxed ones have no fsync of their own). fsyncs, WAL "
        f"pages and KB written:\nthe strace pass ({fsync_threads} threads). disk: the files "
        "left, per thread.\nLangGraph (sync)/(async): its durability mode, one thread at a "
        f"time; the rows saying {IN_FLIGHT} keep\nthat many threads in flight "
        "(min of that and the threads of a run), as the group-commit row does."
    )
    ours = [r for r in results if r.name.startswith("durable-graph") and r.name != PREVIOUS]
    for mine in ours:
        print()
        for r in results:
            if r in ours:
                continue
            line = (
                f"{mine.name} vs {r.name}: {mine.per_second / r.per_second:.2f}x throughput, "
                f"{fold(mine.cpu_ms, r.cpu_ms, 'less', 'more')} CPU per thread"
            )
            if mine.cpu_tmpfs and r.cpu_tmpfs:
                line += f" ({fold(mine.cpu_tmpfs, r.cpu_tmpfs, 'less', 'more')} on tmpfs)"
            if mine.io and r.io and mine.io.wal_bytes and r.io.wal_bytes:
                wal = fold(mine.io.wal_bytes, r.io.wal_bytes, "fewer", "more")
                line += f", {wal} WAL bytes per thread"
            print(line)
        print(against_best(mine, [r for r in results if not r.name.startswith("durable-graph")]))
    sync = next((r for r in results if r.name == "LangGraph SqliteSaver (sync)"), None)
    # fsyncs per thread: the strace pass's count where there is one (the OS-threads row's
    # commits share fsyncs: fewer than its durable commits), else its durable commits
    mine_cpu = [(r.name, r.io.fsyncs if r.io else r.durable / r.threads, r.cpu_ms) for r in ours]
    print()
    print("\n".join(ceiling_lines(fsyncs, sync.per_second if sync else None, mine_cpu)))
    if floor.threads:
        print(floor_line(floor.per_second, floor.cpu_ms, sync.per_second if sync else None))


if __name__ == "__main__":
    main()
