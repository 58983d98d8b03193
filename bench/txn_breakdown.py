"""Every SQLite write transaction of one approval thread (run → suspend → approve → complete) on
the embedded store: what it writes, how many WAL frames (pages) it appends and to which tables
and indexes, and whether it is fsynced (durable) or relaxed.

The flow runs `--warmup` threads first (so the tables have their steady-state shape), then
`--threads` more, whose transactions are listed (each thread's in turn, then the per-thread
average). Automatic WAL checkpoints are switched off for the run, so the WAL only grows and the
frames a COMMIT appended are the bytes between two COMMITs; each frame's page number is mapped to
its b-tree (table or index) with SQLite's `dbstat` at the end.

    .venv/bin/python bench/txn_breakdown.py [--threads 3] [--warmup 20] [--quiet] [--encrypt]

`--encrypt` runs the flow on an encrypted store (encryption at rest on, `keys.py`).

`--previous DIR` runs the same in a child process importing another checkout's durable-graph,
and prints both summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.approval_waves import run_flow
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from examples.email_approval import graph as email_graph

WAL_HEADER = 32
FRAME_HEADER = 24
_WRITE = re.compile(
    r"^\s*(INSERT(?: OR \w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+(\w+)", re.I
)


@dataclass
class Transaction:
    durable: bool
    writes: list[str] = field(default_factory=list)  # "INSERT checkpoints", ...
    pages: list[int] = field(default_factory=list)  # page numbers of the frames appended

    def label(self) -> str:
        counted = Counter(self.writes)
        return ", ".join(f"{w}" + (f" x{n}" if n > 1 else "") for w, n in counted.items())


class Recorder:
    """A `Database.trace` callback: groups statements into transactions and reads the frames
    each one appended to the WAL."""

    def __init__(self, wal: Path, page_size: int) -> None:
        self.wal = wal
        self.frame = FRAME_HEADER + page_size
        self.offset = WAL_HEADER
        self.durable = True
        self.open: Transaction | None = None
        self.done: list[Transaction] = []
        self.on = False

    def __call__(self, statement: str) -> None:
        head = statement.lstrip()[:40].upper()
        if head.startswith("PRAGMA SYNCHRONOUS"):
            self.durable = "NORMAL" not in head
        elif head.startswith("BEGIN"):
            self._collect()
            self.open = Transaction(self.durable)
        elif head.startswith(("COMMIT", "ROLLBACK")):
            if self.open is not None and self.on and head.startswith("COMMIT"):
                if "RELAXED" in head:  # commit_count.py's RELAXED_COMMIT: no sync of its own
                    self.open.durable = False
                self.done.append(self.open)
            self.open = None
        elif self.open is not None:
            match = _WRITE.match(statement)
            if match:
                verb = match.group(1).split()[0].upper()
                self.open.writes.append(f"{verb} {match.group(2)}")

    def _collect(self) -> None:
        """Give the frames appended since the last look to the last committed transaction."""
        size = self.wal.stat().st_size if self.wal.exists() else 0
        if size <= self.offset:
            return
        with self.wal.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size - self.offset)
        pages = [
            struct.unpack(">I", data[i : i + 4])[0]
            for i in range(0, len(data) - self.frame + 1, self.frame)
        ]
        self.offset = size
        if self.on and self.done:
            self.done[-1].pages.extend(pages)


def run(threads: int, warmup: int, root: Path, *, encrypt: bool = False) -> dict[str, object]:
    backend = local_backend(root, encrypt=encrypt)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    db = queue.db
    with db.read() as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    recorder = Recorder(Path(str(db.path) + "-wal"), page_size)
    db.trace(recorder)
    app = email_graph.with_backend(backend)
    per_thread: list[list[Transaction]] = []
    for i in range(warmup + threads):
        recorder.on = i >= warmup
        start = len(recorder.done)
        run_flow(app, f"tx-{i}", f"pay supplier {i}")
        with db.write():  # an empty transaction: its BEGIN collects the last one's frames
            pass
        if recorder.on:
            per_thread.append(recorder.done[start:])
    db.trace(None)
    with db.read() as conn:
        owner = dict((int(p), str(n)) for n, p in conn.execute("SELECT name, pageno FROM dbstat"))
    backend.close()
    threads_out = []
    for txns in per_thread:
        threads_out.append(
            [
                {
                    "durable": t.durable,
                    "writes": t.label(),
                    "frames": len(t.pages),
                    "btrees": dict(Counter(owner.get(p, "?free") for p in t.pages)),
                }
                for t in txns
                if t.writes or t.pages
            ]
        )
    return {"page_size": page_size, "threads": threads_out}


def summary(result: dict[str, object], name: str, *, quiet: bool) -> None:
    threads = result["threads"]
    assert isinstance(threads, list)
    page = int(str(result["page_size"]))
    if not quiet:
        for i, txns in enumerate(threads):
            print(f"\n{name}, thread {i + 1} (page size {page}):")
            for n, t in enumerate(txns, 1):
                kind = "fsync  " if t["durable"] else "relaxed"
                btrees = " ".join(f"{k}:{v}" for k, v in sorted(t["btrees"].items()))
                print(f"  {n}. {kind} {t['frames']:>2} frames  [{btrees}]\n       {t['writes']}")
    n = len(threads)
    txns = sum(len(t) for t in threads) / n
    durable = sum(1 for t in threads for x in t if x["durable"]) / n
    frames = sum(x["frames"] for t in threads for x in t) / n
    print(
        f"\n{name}: per thread {txns:.1f} write transactions ({durable:.1f} fsynced), "
        f"{frames:.1f} WAL frames = {frames * (page + FRAME_HEADER) / 1024:.1f} KB"
    )
    by_tree: Counter[str] = Counter()
    for t in threads:
        for x in t:
            by_tree.update(x["btrees"])
    print("  frames per thread by b-tree: " + ", ".join(
        f"{k} {v / n:.1f}" for k, v in by_tree.most_common()
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quiet", action="store_true", help="the summary only")
    parser.add_argument("--previous", type=Path, help="another checkout, run beside this one")
    parser.add_argument("--encrypt", action="store_true", help="encryption at rest on")
    parser.add_argument("--json", action="store_true", help=ARGPARSE_SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.threads, args.warmup, Path(tmp) / "store", encrypt=args.encrypt)
    if args.json:
        print(json.dumps(result))
        return
    if args.previous is not None:
        source = args.previous.resolve()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source / "shared"), str(source)])}
        command = [sys.executable, __file__, "--json", "--threads", str(args.threads)]
        command += ["--warmup", str(args.warmup)] + (["--encrypt"] if args.encrypt else [])
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        summary(json.loads(done.stdout.strip().splitlines()[-1]), "previous", quiet=args.quiet)
    summary(result, "this checkout", quiet=args.quiet)


ARGPARSE_SUPPRESS = argparse.SUPPRESS

if __name__ == "__main__":
    main()
