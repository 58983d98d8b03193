"""What an fsync costs on the benchmark's own disk, and the ceiling it puts on a durable engine's
throughput: `bench/approval_throughput.py` measures it in every round, beside the engines.

A thread that takes F durable commits one after another waits at least F fsyncs, whatever its
CPU: at zero CPU it runs at most `1 / (F x fsync)` threads per second. So "N times LangGraph's
threads/s" is only reachable, one thread at a time, with at most `1 / (N x LangGraph's threads/s)
- F x fsync` of CPU per thread, and not at all when that is below zero. The fsync is measured,
not assumed: a 4 KB page written at the next offset of a file in the benchmark's folder, then
`fdatasync` (what SQLite does at a WAL commit: durable-graph's durable commit fdatasyncs the WAL,
LangGraph's `synchronous=FULL` too), the file written once in full beforehand, as SQLite rewrites
its WAL from the start after a checkpoint (no file size to flush with the data). Only the
`fdatasync` is timed; the median of the samples is the cost.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

PAGE = 4096
SAMPLES = 100  # per round
DURABLE_COMMITS = 4  # per approval thread: the budget's floor (DESIGN.md §9, runtime_runs._run)
TARGET = 4.0  # the budget: 4x LangGraph SqliteSaver (sync) threads/s

_sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def fsync_samples(folder: Path, samples: int = SAMPLES) -> list[float]:
    """Seconds of each of `samples` fdatasyncs of one page written in a file in `folder`."""
    path = folder / "fsync-probe"
    block = os.urandom(PAGE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, bytes(PAGE * samples))  # the file's blocks exist before the timed syncs
        os.fsync(fd)
        seconds = []
        for i in range(samples):
            os.pwrite(fd, block, i * PAGE)
            start = time.perf_counter()
            _sync(fd)
            seconds.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return seconds


def ceiling_lines(
    seconds: list[float],
    langgraph_per_second: float | None,
    ours: list[tuple[str, float, float]],
) -> list[str]:
    """What to print: the fsync's cost, the zero-CPU ceiling of `DURABLE_COMMITS` fsyncs per
    thread, and the CPU per thread `TARGET`x LangGraph's throughput leaves each of `ours`
    (name, durable commits per thread and CPU ms per thread, all measured in the run)."""
    fsync = statistics.median(seconds)
    p90 = statistics.quantiles(seconds, n=10)[-1] if len(seconds) > 1 else fsync
    ceiling = 1 / (DURABLE_COMMITS * fsync)
    lines = [
        f"fsync on this disk: median {1000 * fsync:.3f} ms (p90 {1000 * p90:.3f} ms) of "
        f"{len(seconds)} fdatasyncs of a {PAGE // 1024} KB page, in the rounds' folder",
        f"ceiling: an engine doing {DURABLE_COMMITS} fsyncs per thread, one thread at a time, at "
        f"zero CPU: {ceiling:.0f} threads/s",
    ]
    if langgraph_per_second is None:
        return lines
    target = TARGET * langgraph_per_second
    lines[-1] += f" = {ceiling / langgraph_per_second:.2f}x LangGraph sync"
    for name, durable, cpu_ms in ours:
        wait_ms, budget_ms = 1000 * durable * fsync, 1000 / target
        head = f"{TARGET:.0f}x LangGraph sync ({target:.0f} threads/s, {budget_ms:.2f} ms a thread)"
        fsyncs = f"{durable:.2g} fsyncs per thread ({wait_ms:.2f} ms)"
        if wait_ms >= budget_ms:
            lines.append(f"{head}, {name}: its {fsyncs} alone exceed it, at any CPU")
            continue
        lines.append(
            f"{head}, {name}: {fsyncs} leave {budget_ms - wait_ms:.2f} ms CPU per thread "
            f"(measured: {cpu_ms:.2f} ms)"
        )
    return lines
