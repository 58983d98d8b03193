"""What a retention pass costs as the store grows (`durable_graph/retention.py`): the embedded
store holding N settled threads of a graph kept 30 days, all old enough, each with a big state
value (an offloaded chunk) and a big recorded io response (a shared `$payload` object).

For each size, in the same run: `erase` — one pass that erases every thread (ms per thread);
`check` — the next pass, which finds nothing left (ms per thread): the baseline of reading a
thread and planning its erasure. Before deleting a content-addressed object that another
thread might share, an erasure reads every other thread's ledger (`erasure._unreferenced`), so
the erase cost per thread grows with N: a whole pass is O(N^2) in ledger reads. Paging and the
saved cursor make such a pass resumable across runs; they do not make it cheaper.

Nothing is asserted (a benchmark, not a test); compare the ratios between sizes.

    PYTHONPATH=shared:. .venv/bin/python bench/retention_scale.py [--sizes 50 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.clock import ManualClock
from durable_graph.retention import run_retention
from durable_graph.retention_policy import Retention
from tests.conformance.test_erasure import graph, run_case

DAY = 86_400


def measure(threads: int) -> tuple[float, float]:
    """(ms per thread of the erasing pass, ms per thread of the pass that finds nothing)."""
    with tempfile.TemporaryDirectory() as folder:
        clock = ManualClock()
        backend = local_backend(Path(folder), clock=clock)
        try:
            for i in range(threads):
                run_case(backend, clock, f"t{i:05}")
            clock.advance(31 * DAY)
            policies = {graph.name: Retention(days=30)}
            began = time.perf_counter()
            erased = run_retention(backend, policies=policies, clock=clock)
            erase_ms = (time.perf_counter() - began) * 1000 / threads
            began = time.perf_counter()
            checked = run_retention(backend, policies=policies, clock=clock)
            check_ms = (time.perf_counter() - began) * 1000 / threads
        finally:
            backend.close()
    assert erased.totals.erased == threads and checked.totals.unchanged == threads
    return erase_ms, check_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    print(f"{'threads':>8} {'erase ms/thread':>16} {'check ms/thread':>16} {'erase/check':>12}")
    first: float | None = None
    for size in args.sizes:
        erase_ms, check_ms = measure(size)
        first = first or erase_ms
        print(
            f"{size:>8} {erase_ms:>16.1f} {check_ms:>16.1f} {erase_ms / check_ms:>11.0f}x"
            f"   (erase cost per thread {erase_ms / first:.1f}x the smallest size's)",
            flush=True,
        )


if __name__ == "__main__":
    main()
