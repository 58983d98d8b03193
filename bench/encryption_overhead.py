"""What encryption at rest costs a step (`durable_graph/encryption.py`, `docs/record-format.md`
§14): the same workloads on the embedded store with encryption off and on, in the same run, in
interleaved rounds (each round runs both, in a shuffled order, on fresh folders).

1. approval — the seed's approval flow (run → suspend → approve → complete), N threads: threads
   per second and CPU ms per thread. Each thread creates (and wraps) one data key.
2. chat — one thread, T turns, each appending a ~1 KB LLM answer recorded with `ctx.record`
   (a sealed inline change and a sealed io response per step; snapshots and segments every 64
   steps): ms per step and bytes on disk per turn. The answer is the test suite's lorem ipsum,
   which deflates ~10x, so it is run again with
3. chat, varied text — the same with an answer of words drawn from a 2,000-word vocabulary
   (deflates ~1.7x; 1 KB of this repository's README deflates ~2x).

4. approval on PostgreSQL (`--postgres`) — the approval flow on a real server (the tests'
   throwaway cluster, `tests/postgres/server.py`), bytes measured as the server stores them:
   the sum of `pg_column_size` of every row of the store's tables, per thread, each mode in a
   fresh schema.

Prints medians over the rounds and the on/off ratio. Nothing is asserted (a benchmark, not a
test); the machine is shared, so compare the ratio, not the absolute numbers.

    PYTHONPATH=shared:. .venv/bin/python bench/encryption_overhead.py [--threads 200]
        [--turns 300] [--rounds 5] [--postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.approval_waves import run_flow
from durable_graph import NodeContext
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from examples.email_approval import graph as email_graph
from tests.ledger.graphs import Chat, build
from tests.ledger.graphs import graph as chat_graph

_LETTERS = "etaoinshrdlucmfwypvbgkqjxz"
_VOCAB = [
    "".join(random.Random(i).choices(_LETTERS[: 8 + i % 18], k=2 + i % 9)) for i in range(2000)
]


def varied_llm(request: dict[str, int]) -> str:
    """A deterministic ~1 KB answer of words from `_VOCAB` (as compressible as prose)."""
    rng = random.Random(request["turn"])
    return " ".join(rng.choice(_VOCAB) for _ in range(220))[:1024]


def varied_reply(state: Chat, ctx: NodeContext) -> dict[str, object]:
    text = ctx.record("llm", varied_llm, {"turn": state.turns})
    return {"messages": [text], "turns": state.turns + 1}


varied_graph = build(varied_reply).compile(
    interrupt_before=["review"], name="bench.encryption_overhead:varied_graph"
)

MODES = ("off", "on")


@dataclass
class Sample:
    wall: float
    cpu: float
    units: int
    stored: int


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "keys" not in p.parts)


def run_approvals(backend: Backend, threads: int) -> Sample:
    """`threads` seed approval threads run to completion on `backend` (closed after); `stored`
    is left for the caller, which knows where the backend keeps its bytes."""
    app = email_graph.with_backend(backend)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(threads):
        run_flow(app, f"tx-{i}", f"pay supplier {i}")
    sample = Sample(time.perf_counter() - wall, time.process_time() - cpu, threads, 0)
    assert app.get_state(f"tx-{threads - 1}").values["outcome"] == "sent"
    backend.close()
    return sample


def approval(root: Path, encrypt: bool, threads: int) -> Sample:
    sample = run_approvals(local_backend(root, encrypt=encrypt), threads)
    sample.stored = folder_bytes(root)
    return sample


def approval_pg(root: Path, encrypt: bool, threads: int) -> Sample:
    """The approval flow on a fresh schema of the tests' PostgreSQL server; `stored`: what its
    rows take (`pg_column_size`, so PostgreSQL's own compression of big values counts)."""
    import psycopg

    from durable_graph.backends.postgres import postgres_backend
    from durable_graph.keys import LocalKeyFile
    from tests.postgres.server import fresh_schema_uri

    with fresh_schema_uri() as uri:
        kek = LocalKeyFile(root / "kek") if encrypt else None
        sample = run_approvals(postgres_backend(uri, kek=kek), threads)
        with psycopg.connect(uri) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name <> 'durable_graph_schema'"
            ).fetchall()
            for (table,) in tables:
                row = conn.execute(f'SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM "{table}" t')
                found = row.fetchone()
                sample.stored += int(found[0]) if found else 0
    return sample


def chat(root: Path, encrypt: bool, turns: int, graph: object = chat_graph) -> Sample:
    backend = local_backend(root, encrypt=encrypt)
    app = graph.with_backend(backend)  # type: ignore[attr-defined]
    wall, cpu = time.perf_counter(), time.process_time()
    app.invoke({"limit": turns}, {"recursion_limit": 10**9}, thread_id="chat")
    sample = Sample(time.perf_counter() - wall, time.process_time() - cpu, turns, 0)
    backend.close()
    sample.stored = folder_bytes(root)
    return sample


def measure(
    name: str, run: Callable[[Path, bool], Sample], rounds: int, unit: str, per: float
) -> None:
    results: dict[str, list[Sample]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="dg-enc-") as tmp:
        run(Path(tmp) / "warmup-off", False)
        run(Path(tmp) / "warmup-on", True)
        for index in range(rounds):
            order = list(MODES)
            random.shuffle(order)
            for mode in order:
                results[mode].append(run(Path(tmp) / f"{mode}-{index}", mode == "on"))

    def median(mode: str, pick: Callable[[Sample], float]) -> float:
        return statistics.median(pick(s) for s in results[mode])

    print(f"\n{name} ({rounds} interleaved rounds, medians)")
    print(f"{'':<14}{'off':>12}{'on':>12}{'on/off':>9}")
    rows = [
        (f"wall {unit}", lambda s: per * s.wall / s.units),
        (f"cpu {unit}", lambda s: per * s.cpu / s.units),
        ("bytes / unit", lambda s: s.stored / s.units),
    ]
    for label, pick in rows:
        off, on = median("off", pick), median("on", pick)
        print(f"{label:<14}{off:>12.3f}{on:>12.3f}{on / off:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--postgres", action="store_true", help="only the approval flow, on PostgreSQL"
    )
    args = parser.parse_args()
    if args.postgres:
        measure(
            f"approval flow on PostgreSQL, {args.threads} threads (unit: a thread of 4 steps)",
            lambda root, on: approval_pg(root, on, args.threads),
            args.rounds,
            "ms/thread",
            1000.0,
        )
        return
    measure(
        f"approval flow, {args.threads} threads (unit: a thread of 4 steps)",
        lambda root, on: approval(root, on, args.threads),
        args.rounds,
        "ms/thread",
        1000.0,
    )
    measure(
        f"chat, {args.turns} turns of ~1 KB with a recorded LLM answer (unit: a step)",
        lambda root, on: chat(root, on, args.turns),
        args.rounds,
        "ms/step",
        1000.0,
    )
    measure(
        f"chat, varied text, {args.turns} turns of ~1 KB (unit: a step)",
        lambda root, on: chat(root, on, args.turns, varied_graph),
        args.rounds,
        "ms/step",
        1000.0,
    )


if __name__ == "__main__":
    main()
