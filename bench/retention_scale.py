"""What a retention pass costs as the store grows (`durable_graph/retention.py`): the embedded
store holding N settled threads of a graph kept 30 days, all old enough, each with a big state
value (an offloaded chunk) and a big recorded io response (a shared `$payload` object).

For each size, in the same run: `erase` — one pass that erases every thread (ms per thread);
`check` — the next pass, which finds nothing left (ms per thread): the baseline of reading a
thread and planning its erasure. Before deleting a content-addressed object that another
thread might share, an erasure must know no other thread refers to it: the pass reads every
ledger once (`references.References`) and each erasure consults that index, re-checking only
what moved since, so the erase cost per thread should stay flat as N grows. (Before the
index, each erasure read every other ledger: O(N^2) ledger reads per pass.)

`ledger reads/thread`: how many thread ledgers the erasing pass read per thread it erased,
which does not depend on the machine's load (the times do: most of an erasure is its fsynced
writes). `--previous DIR` runs this same measurement on another checkout's code (e.g. one from
before the index) at each size too, interleaved with this one, so both see the same load.

Nothing is asserted (a benchmark, not a test); compare the ratios between sizes.

    PYTHONPATH=shared:. .venv/bin/python bench/retention_scale.py [--sizes 50 200 400]
        [--previous /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from durable_graph.backends.local import local_backend
from durable_graph.clock import ManualClock
from durable_graph.retention import run_retention
from durable_graph.retention_policy import Retention
from tests.conformance.test_erasure import graph, run_case

DAY = 86_400


class Measured(NamedTuple):
    erase_ms: float  # per thread, the pass that erases every thread
    check_ms: float  # per thread, the next pass (nothing left)
    ledgers: float  # ledger reads per thread erased (load-independent: the cost that grew)


def measure(threads: int) -> Measured:
    """One store of `threads` threads, erased by a pass, then checked by another."""
    with tempfile.TemporaryDirectory() as folder:
        clock = ManualClock()
        backend = local_backend(Path(folder), clock=clock)
        store = backend.checkpoints
        reads = [0]
        read_ledger = store.ledger

        def counted(thread_id: str) -> Any:
            reads[0] += 1
            return read_ledger(thread_id)

        try:
            for i in range(threads):
                run_case(backend, clock, f"t{i:05}")
            clock.advance(31 * DAY)
            policies = {graph.name: Retention(days=30)}
            store.ledger = counted  # type: ignore[method-assign]
            began = time.perf_counter()
            erased = run_retention(backend, policies=policies, clock=clock)
            erase_ms = (time.perf_counter() - began) * 1000 / threads
            ledgers = reads[0] / threads
            began = time.perf_counter()
            checked = run_retention(backend, policies=policies, clock=clock)
            check_ms = (time.perf_counter() - began) * 1000 / threads
        finally:
            backend.close()
    assert erased.totals.erased == threads and checked.totals.unchanged == threads
    return Measured(erase_ms, check_ms, ledgers)


def measure_in(checkout: Path, threads: int) -> Measured:
    """`measure` (this file's) run on the code of the checkout at `checkout`, in a child."""
    code = (
        f"import runpy; m = runpy.run_path({str(Path(__file__).resolve())!r}); "
        f"print(*m['measure']({threads}))"
    )
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'shared'}{os.pathsep}{checkout}"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the previous checkout failed at {threads} threads:\n{done.stderr}")
    erase_ms, check_ms, ledgers = done.stdout.split()[-3:]
    return Measured(float(erase_ms), float(check_ms), float(ledgers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--previous", type=Path, help="another checkout, measured interleaved")
    args = parser.parse_args()
    print(
        f"{'checkout':>9} {'threads':>8} {'erase ms/thread':>16} {'check ms/thread':>16} "
        f"{'ledger reads/thread':>20}"
    )
    for size in args.sizes:
        runs: list[tuple[str, Callable[[int], Measured]]] = [("this", measure)]
        if args.previous is not None:
            runs.append(("previous", lambda n: measure_in(args.previous, n)))
        for label, run in runs:
            got = run(size)
            print(
                f"{label:>9} {size:>8} {got.erase_ms:>16.1f} {got.check_ms:>16.1f} "
                f"{got.ledgers:>20.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
