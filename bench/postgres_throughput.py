"""The seed's approval flow on one PostgreSQL server: durable-graph with 1, 4 and 8 worker
processes, beside LangGraph + `PostgresSaver` with as many processes, in the same run.

The server is started by the benchmark (the Debian package's binaries, as the tests do;
`fsync=on`, `synchronous_commit=on`: every commit durable) with `pg_stat_statements`, so the
statements are counted by the server, for both engines alike, workers included.

durable-graph: W `durable-graph worker --concurrency 1` processes are started and left idle
(LISTENing); then this process starts N threads (`app.start`, as an API would), waits until all
are suspended at `human_review`, approves all (`resume(run=False)`), and waits until all are
completed. The clock runs from the first start to the last completion. Group commit: the same
with `worker --concurrency 100` (100 threads in flight, `--in-flight`): each worker runs the up
to 100 tasks it leased and commits their steps in one transaction (`Worker.handle_group`), and
the starts and the approvals are each one unit of work per 100 threads (as many API requests
arriving at once would be, batched; bench/approval_throughput.py does the same embedded), or,
in the "starts 1 by 1" rows, each its own transaction as in the one-at-a-time rows.
LangGraph has no queue: each of its W processes runs N/W whole threads (invoke, update_state,
invoke) with `durability="sync"` (each checkpoint written before the next step). DBOS (when
installed) runs the same flow as a workflow with a `recv` for the approval, W processes with
N/W each, its system database on the same server.

    PYTHONPATH=. .venv/bin/python bench/postgres_throughput.py [--threads 200] [--workers 1 4 8]
        [--in-flight 100]

Printed, not asserted: threads/s, statements, transactions and WAL flushes per thread (the
server's `pg_stat_wal.wal_sync`: the durable commits, whoever made them), and threads/s as a
multiple of LangGraph's with as many processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.dbos_approval import approval_workflow
from bench.langgraph_email import langgraph_email_graph
from durable_graph.backends.postgres import postgres_backend
from examples.email_approval import graph as email_graph
from tests.postgres.server import PostgresServer

REPO = Path(__file__).resolve().parents[1]
POLL = "SELECT /* bench-poll */ status, count(*) FROM threads GROUP BY status"


@dataclass
class Result:
    name: str
    workers: int
    threads: int
    seconds: float
    statements: int
    transactions: int
    wal_syncs: int

    @property
    def per_second(self) -> float:
        return self.threads / self.seconds


class Counters:
    """Statements (pg_stat_statements, every statement of every client, minus our polling)
    and committed transactions (pg_stat_database) of one database, and the server's WAL
    flushes (pg_stat_wal: server-wide, so one engine runs at a time)."""

    def __init__(self, server: PostgresServer, database: str) -> None:
        self.admin = server.connect()
        self.database = database

    def reset(self) -> None:
        self.admin.execute("SELECT pg_stat_statements_reset()")
        self.admin.execute("SELECT pg_stat_reset()")  # this database's transaction counters
        self.admin.execute("SELECT pg_stat_reset_shared('wal')")

    def read(self) -> tuple[int, int, int]:
        time.sleep(0.6)  # statistics reach the views asynchronously (stats_fetch_consistency)
        self.admin.execute("SELECT pg_stat_clear_snapshot()")
        statements = self.admin.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
            "ON d.oid = s.dbid WHERE d.datname = %s AND s.query NOT LIKE '%%bench-poll%%' "
            "AND s.query NOT LIKE '%%pg_stat%%'",
            (self.database,),
        ).fetchone()
        commits = self.admin.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.database,)
        ).fetchone()
        syncs = self.admin.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
        return (
            int(statements[0]) if statements else 0,
            int(commits[0]) if commits else 0,
            int(syncs[0]) if syncs else 0,
        )


def fresh_database(server: PostgresServer, name: str) -> str:
    with server.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
        conn.execute(f"CREATE DATABASE {name}".encode())
    return server.uri(name)


def wait_for(uri: str, status: str, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(uri, autocommit=True) as conn:
        while True:
            found: dict[str, int] = dict(conn.execute(POLL).fetchall())
            if found.get(status, 0) >= count:
                return
            if found.get("failed"):
                raise RuntimeError(f"threads failed: {found}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {count} {status}: {found}")
            time.sleep(0.02)


def bench_durable_graph(
    server: PostgresServer,
    workers: int,
    threads: int,
    tmp: Path,
    in_flight: int = 0,
    batched: bool = True,
) -> Result:
    """W worker processes draining one store; `in_flight` > 0: group commit, that many
    threads' tasks leased and committed together, and (`batched`) the starts and approvals
    one unit of work per `in_flight` threads, else one transaction each (as one-at-a-time)."""
    name = f"bench_dg_{workers}_{in_flight}_{int(batched)}"
    uri = fresh_database(server, name)
    counters = Counters(server, name)
    backend = postgres_backend(uri)  # migrates the new database before the workers start
    env = {
        **os.environ,
        "DURABLE_GRAPH_STORE": uri,
        "DURABLE_GRAPH_HOME": str(tmp / name),
        "PYTHONPATH": os.pathsep.join((str(REPO / "shared"), str(REPO))),
    }
    concurrency = str(in_flight or 1)
    command = [sys.executable, "-m", "durable_graph", "worker", "--concurrency", concurrency]
    procs = [
        subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    front = in_flight if in_flight and batched else 1
    unit = backend.atomic if front > 1 else nullcontext
    ids = [f"tx-{i}" for i in range(threads)]
    waves = [ids[i : i + front] for i in range(0, threads, front)]
    try:
        time.sleep(3.0)  # let every worker start, connect and go idle (LISTEN)
        app = email_graph.with_backend(backend)
        counters.reset()
        started = time.perf_counter()
        for wave in waves:
            with unit():
                for tid in wave:
                    app.start({"user_prompt": f"pay supplier {tid}"}, thread_id=tid)
        wait_for(uri, "suspended", threads)
        for wave in waves:
            with unit():
                for tid in wave:
                    app.resume(tid, values={"approved": True}, as_node="human_review", run=False)
        wait_for(uri, "completed", threads)
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    counted = counters.read()
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    label = "durable-graph"
    if in_flight:
        label += f" group commit ({in_flight}{'' if batched else ', starts 1 by 1'})"
    return Result(label, workers, threads, elapsed, *counted)


def _langgraph_share(uri: str, outbox: str, first: int, count: int, ready: Any) -> None:
    """One LangGraph process: `count` whole approval threads, from `first`, once every
    process is ready (imported, connected: the clock does not time Python starting)."""
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(uri) as saver:
        graph = langgraph_email_graph(Path(outbox)).compile(
            checkpointer=saver, interrupt_before=["human_review"]
        )
        ready.wait()
        for i in range(first, first + count):
            config: Any = {"configurable": {"thread_id": f"tx-{i}"}}
            graph.invoke({"user_prompt": f"pay supplier {i}"}, config, durability="sync")
            graph.update_state(config, {"approved": True}, as_node="human_review")
            graph.invoke(None, config, durability="sync")
            assert graph.get_state(config).values["outcome"] == "sent"


def _dbos_share(uri: str, outbox: str, first: int, count: int, ready: Any) -> None:
    """One DBOS process: `count` approval workflows (a checkpointed draft step, `DBOS.recv`
    for the approval, sent with `DBOS.send`, then a checkpointed send step), once every process
    is ready."""
    from dbos import DBOS

    sent = Path(outbox)
    sent.mkdir(parents=True, exist_ok=True)
    DBOS(config={"name": "approval-bench", "system_database_url": uri})

    approval = approval_workflow(sent)

    DBOS.launch()
    try:
        ready.wait()
        for i in range(first, first + count):
            handle = DBOS.start_workflow(approval, f"pay supplier {i}")
            DBOS.send(handle.workflow_id, True, "approval")
            assert handle.get_result() == "sent"
    finally:
        DBOS.destroy(destroy_registry=True)


def bench_in_processes(
    server: PostgresServer, engine: str, workers: int, threads: int, tmp: Path
) -> Result:
    """LangGraph or DBOS: each of `workers` processes runs its share of whole threads, the
    clock started once all are imported and connected."""
    name = f"bench_{engine}_{workers}"
    uri = fresh_database(server, name)
    if engine == "lg":
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(uri) as saver:
            saver.setup()
    target = _langgraph_share if engine == "lg" else _dbos_share
    counters = Counters(server, name)
    share = threads // workers
    context = multiprocessing.get_context("spawn")
    outbox = str(tmp / name / "sent")
    ready = context.Barrier(workers + 1)
    procs = [
        context.Process(target=target, args=(uri, outbox, w * share, share, ready))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=300)
    counters.reset()
    started = time.perf_counter()
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, proc.exitcode
    elapsed = time.perf_counter() - started
    counted = counters.read()
    label = "LangGraph PostgresSaver (sync)" if engine == "lg" else "DBOS 3 (Postgres)"
    return Result(label, workers, share * workers, elapsed, *counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--in-flight", type=int, default=100, help="group commit: threads at once")
    args = parser.parse_args()
    server = PostgresServer(
        fsync=True,
        settings=("shared_preload_libraries=pg_stat_statements", "synchronous_commit=on"),
    )
    results: list[Result] = []
    try:
        server.start()
        with server.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with tempfile.TemporaryDirectory() as tmp:
            for workers in args.workers:
                results.append(bench_durable_graph(server, workers, args.threads, Path(tmp)))
                for batched in (True, False):
                    results.append(
                        bench_durable_graph(
                            server, workers, args.threads, Path(tmp), args.in_flight, batched
                        )
                    )
                for engine, module in (("lg", "langgraph"), ("dbos", "dbos")):
                    if importlib.util.find_spec(module) is None:
                        print(f"{module} is not installed: pip install -e '.[bench]'")
                        continue
                    results.append(
                        bench_in_processes(server, engine, workers, args.threads, Path(tmp))
                    )
    finally:
        server.destroy()
    print(
        f"\nApproval flow on one PostgreSQL (fsync on), {args.threads} threads, "
        f"{os.cpu_count()} CPUs\n"
    )
    header = (
        f"{'engine':<50}{'processes':>10}{'threads/s':>11}{'statements/thread':>19}"
        f"{'transactions/thread':>21}{'WAL flushes/thread':>20}{'x LangGraph':>13}"
    )
    print(header)
    print("-" * len(header))
    langgraph = {r.workers: r.per_second for r in results if r.name.startswith("LangGraph")}
    for r in results:
        baseline = langgraph.get(r.workers)
        ratio = f"{r.per_second / baseline:.2f}x" if baseline else "-"
        print(
            f"{r.name:<50}{r.workers:>10}{r.per_second:>11.1f}{r.statements / r.threads:>19.1f}"
            f"{r.transactions / r.threads:>21.1f}{r.wal_syncs / r.threads:>20.1f}{ratio:>13}"
        )


if __name__ == "__main__":
    main()
