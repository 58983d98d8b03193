"""What the payload collector (`durable-graph gc`, `payload_gc.py`) reclaims on a long thread,
and what a run costs.

One thread of N steps (`--steps`, default 1,000 and 10,000) on the embedded store, each step
appending a ~1 KB message to a list and adding a ~1 KB key to a dict (both kept in snapshot
segments merged in runs, `segment_runs.py`), written by two kinds of process in the same run,
interleaved:

- `deleting`: the embedded default, which deletes the segments its merges retire;
- `leaving`: a process that may not delete payloads and leaves nothing for a sweeper (the AWS
  worker with its leftovers lost, or any writer killed between its commits and its deletes).

Then `collect` with a one-hour grace after the clock moved two hours (every object old enough).
Printed per N and kind: payload objects and bytes before and after, what the collector deleted,
its mark and sweep times, the whole store (SQLite file and payload folder) against the raw
bytes appended (N x 2 KB), and a check that the thread still verifies and its head reads back
cold. `old-only`: the bytes only older snapshots need (the dict segments merged away since, which
the collector keeps: dropping older snapshots would reclaim them, at the cost of reading old
steps by folding rows). No budget: the baseline is the `deleting` writer beside the `leaving`
one (after the collector both should hold the same payload bytes).

    PYTHONPATH=shared:. .venv/bin/python bench/payload_gc.py --steps 1000,10000
"""

from __future__ import annotations

import argparse
import json
import operator
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph
from durable_graph.backends.local import local_backend
from durable_graph.backends.snapshots import read_snapshot, snapshot_refs
from durable_graph.clock import ManualClock
from durable_graph.payload_gc import collect
from durable_graph.verification import verify_thread

NO_LIMIT = {"recursion_limit": 10_000_000}
ENTRY = 1024


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


class Chat(BaseModel):
    messages: Annotated[list[dict[str, str]], operator.add] = Field(default_factory=list)
    facts: Annotated[dict[str, str], merged] = Field(default_factory=dict)
    turn: int = 0
    stop_at: int = 0


def text(turn: int, tag: str) -> str:
    """About `ENTRY` bytes of text that compresses as prose does (not as padding)."""
    words = [f"{tag}{turn}w{i * 7919 % 9973}" for i in range(ENTRY // 9)]
    return " ".join(words)[:ENTRY]


def step(state: Chat) -> dict[str, Any]:
    turn = state.turn
    message = {"role": "user" if turn % 2 else "assistant", "content": text(turn, "m")}
    return {"messages": [message], "facts": {f"k{turn}": text(turn, "f")}, "turn": turn + 1}


def again(state: Chat) -> str:
    return "step" if state.turn < state.stop_at else END


def _graph() -> Any:
    builder = StateGraph(Chat)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", again, {"step": "step", END: END})
    return builder.compile(name="bench.payload_gc:graph")


graph = _graph()


def folder_size(root: Path, part: str = "") -> tuple[int, int]:
    """Files and bytes under `root/part`."""
    files = [p for p in (root / part).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def older_only(backend: Any) -> int:
    """Bytes of the objects only older snapshots need: what dropping every snapshot but the
    newest would reclaim (the dict segments merged since, and the older documents)."""
    rows = backend.checkpoints.inner.list_checkpoints("t", newest_first=False)
    head = rows[-1]
    newest = next(r.snap for r in rows if r.step == head.anchor)
    snapshot = read_snapshot(backend.payloads, newest)
    needed = {newest.sha256} | {r.sha256 for r in snapshot_refs(backend.payloads, snapshot)}
    total, after = 0, ""
    while page := backend.payloads.list_objects(after, 1000):
        total += sum(o.size for o in page if o.sha256 not in needed)
        after = page[-1].sha256
    return total


def one(n: int, kind: str, root: Path) -> dict[str, Any]:
    clock = ManualClock(datetime.now(UTC))
    home = root / f"{kind}-{n}"
    backend = local_backend(home, clock=clock)
    if kind == "leaving":
        backend.checkpoints.deletes_payloads = False
        backend.checkpoints.leftovers = None
    started = time.perf_counter()
    graph.with_backend(backend, clock=clock).invoke({"stop_at": n}, NO_LIMIT, thread_id="t")
    wrote = time.perf_counter() - started
    backend.close()
    payloads_before = folder_size(home, "payloads")
    store_before = folder_size(home)[1]
    clock.advance(7200)
    backend = local_backend(home, clock=clock)  # the collector's own process
    marks: list[float] = []

    def timing(phase: str, _: Any) -> None:
        if phase == "sweep" and not marks:
            marks.append(time.perf_counter())

    gc_started = time.perf_counter()
    done = collect(backend, grace=timedelta(hours=1), clock=clock, progress=timing)
    finished = time.perf_counter()
    head = backend.checkpoints.head_checkpoint("t")
    ok = verify_thread(backend, "t").ok and head is not None and len(head.values["facts"]) == n
    older = older_only(backend)
    backend.close()
    payloads_after = folder_size(home, "payloads")
    raw = n * 2 * ENTRY
    return {
        "n": n,
        "kind": kind,
        "write_s": round(wrote, 1),
        "objects_before": payloads_before[0],
        "payload_mb_before": round(payloads_before[1] / 1e6, 2),
        "deleted": done.deleted,
        "deleted_mb": round(done.deleted_bytes / 1e6, 2),
        "objects_after": payloads_after[0],
        "payload_mb_after": round(payloads_after[1] / 1e6, 2),
        "older_only_mb": round(older / 1e6, 2),
        "store_x_raw_before": round(store_before / raw, 2),
        "store_x_raw_after": round(folder_size(home)[1] / raw, 2),
        "mark_s": round((marks[0] if marks else finished) - gc_started, 2),
        "sweep_s": round(finished - (marks[0] if marks else finished), 2),
        "threads": done.threads,
        "verified": ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1000,10000", help="thread lengths")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.steps.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dg-gc-bench-") as folder:
        for n in sizes:
            for kind in ("deleting", "leaving"):  # interleaved: same machine state
                rows.append(one(n, kind, Path(folder)))
                print(f"  {kind} {n}: done", flush=True)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    header = (
        f"{'steps':>6} {'writer':>9} {'objects':>8} {'payl MB':>8} {'deleted':>8} "
        f"{'del MB':>7} {'after':>6} {'payl MB':>8} {'old-only':>8} {'store/raw':>10} "
        f"{'mark s':>7} {'sweep s':>8} ok"
    )
    print("\n== payload gc: one thread, 1 KB to a list and 1 KB to a dict a step")
    print(header)
    for r in rows:
        print(
            f"{r['n']:>6} {r['kind']:>9} {r['objects_before']:>8} {r['payload_mb_before']:>8} "
            f"{r['deleted']:>8} {r['deleted_mb']:>7} {r['objects_after']:>6} "
            f"{r['payload_mb_after']:>8} {r['older_only_mb']:>8} "
            f"{r['store_x_raw_before']:>4}->{r['store_x_raw_after']:<5}"
            f" {r['mark_s']:>7} {r['sweep_s']:>8} {r['verified']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
