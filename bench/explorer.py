"""The ledger explorer on long threads and many threads: does a page cost what it shows, or what
the store holds?

One embedded store holds a 10-step thread (the baseline), a `--steps`-step thread (10,000 by
default: the scale issue's long thread) and `--threads` extra thread records (5,000). A fresh
process view of the store (a new backend object: no cache) serves each request through the API's
resolver, exactly as `durable-graph serve` does minus the socket. Each request is timed cold
(first) and warm (median of `--repeat`), on the short and the long thread side by side; the
budget is the issue's: a thread opens in under a second. Nothing is asserted.

    PYTHONPATH=.:shared .venv/bin/python bench/explorer.py
    PYTHONPATH=.:shared .venv/bin/python bench/explorer.py --steps 2000 --threads 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "shared"), str(HERE.parent)]

from durable_graph.api import build_resolver, local_api  # noqa: E402
from durable_graph.api.proxy import event_from_http, http_from_result  # noqa: E402
from durable_graph.backends.local import local_backend  # noqa: E402
from durable_graph.checkpoint import GraphRef, ThreadRecord  # noqa: E402
from tests.loops import loop_graph  # noqa: E402

GRAPH = "bench.explorer:loop"
TOKEN = "bench-explorer-session-token-0123"
BUDGET_MS = 1000.0


class Loop(BaseModel):
    n: int = 0
    limit: int = 10
    note: str = ""


def tick(state: Loop) -> dict[str, Any]:
    return {"n": state.n + 1, "note": f"turn {state.n + 1}: " + "x" * 200}


loop = loop_graph(Loop, "tick", tick, more=lambda state: state.n < state.limit, name=GRAPH)


def build(home: Path, steps: int, threads: int) -> float:
    backend = local_backend(home)
    try:
        started = time.perf_counter()
        app = loop.with_backend(backend)
        app.invoke({"limit": 9}, thread_id="short")
        # Past the default recursion_limit (25 steps) on purpose: the long thread is the point.
        app.invoke({"limit": steps - 1}, {"recursion_limit": steps + 1}, thread_id="long")
        with backend.atomic():
            for i in range(threads):
                backend.checkpoints.put_thread(
                    ThreadRecord(
                        thread_id=f"other-{i:06d}",
                        graph=GraphRef(name=GRAPH, version="v"),
                        status=("running", "suspended", "completed", "failed")[i % 4],
                        head_step=i % 50,
                        created_at="2026-01-01T00:00:00.000000Z",
                        updated_at=f"2026-01-01T00:00:00.{i:06d}Z",
                    ),
                    expected_revision=None,
                )
        return time.perf_counter() - started
    finally:
        backend.close()


def timed(call: Callable[[], int], repeat: int) -> tuple[float, float]:
    """(cold ms, warm median ms) of a request that must answer 200."""
    samples = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        status = call()
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"request answered {status}")
    return samples[0], statistics.median(samples[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["DURABLE_GRAPH_HOME"] = str(home)
        seconds = build(home, args.steps, args.threads)
        print(
            f"store: a 10-step and a {args.steps:,}-step thread, {args.threads:,} other thread "
            f"records (built in {seconds:.1f} s)\n"
        )
        backend = local_backend(home)  # a fresh view: nothing cached from the build
        try:
            api = local_api(
                home,
                backend,
                public_url="http://127.0.0.1:9",
                graphs=(GRAPH,),
                explorer_token=TOKEN,
            )
            api.publish_shapes()
            resolve = build_resolver(api).resolve
            cookie = [("Cookie", f"durable_graph_explorer={TOKEN}"), ("Accept", "text/html")]

            def get(path: str) -> Callable[[], int]:
                def call() -> int:
                    event = event_from_http("GET", path, cookie, b"")
                    status, _, _ = http_from_result(resolve(event, None))  # type: ignore[arg-type]
                    return status

                return call

            middle = args.steps // 2
            rows = [
                ("thread page (head)", "/explorer/threads/{t}"),
                ("graph frame", "/explorer/threads/{t}/graph"),
                ("timeline page in the middle", "/explorer/threads/{t}?before={m}"),
                ("state at a middle step", "/explorer/threads/{t}?step={m}"),
                ("diff first vs head", "/explorer/threads/{t}/diff?a=0&b={h}"),
            ]
            long_label = f"{args.steps:,} steps cold/warm ms"
            print(
                f"{'request':<30} {'10 steps cold/warm ms':>22} {long_label:>26} {'ratio':>6}"
                f"  budget <{BUDGET_MS:.0f} ms"
            )
            for label, pattern in rows:
                short = timed(get(pattern.format(t="short", m=5, h=9)), args.repeat)
                long = timed(get(pattern.format(t="long", m=middle, h=args.steps - 1)), args.repeat)
                verdict = "PASS" if max(long) < BUDGET_MS else "MISS"
                print(
                    f"{label:<30} {short[0]:>10.1f} / {short[1]:>8.1f} "
                    f"{long[0]:>13.1f} / {long[1]:>8.1f} {long[1] / short[1]:>6.1f}x  {verdict}"
                )
            print()
            for label, path in (
                (f"thread list, {args.threads + 2:,} threads", "/explorer"),
                ("thread list, status=failed", "/explorer?status=failed"),
                ("thread list, id search", "/explorer?q=other-0042"),
                ("approvals inbox", "/explorer/approvals"),
            ):
                cold, warm = timed(get(path), args.repeat)
                verdict = "PASS" if max(cold, warm) < BUDGET_MS else "MISS"
                print(f"{label:<30} cold {cold:>8.1f} ms, warm {warm:>8.1f} ms  {verdict}")
            cold, warm = timed(get("/explorer/threads/long/verify"), 1)
            print(
                f"\nverify page, {args.steps:,} steps (reads every record, on request only): "
                f"cold {cold:.0f} ms, warm {warm:.0f} ms"
            )
        finally:
            backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
