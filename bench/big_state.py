"""A conversation of 100 MB on every backend: does a record stay under the store's item limit
and a step cost what it added, however big the state gets? (issue 8, "no state-size ceiling")

One thread of `tests.big_state_graphs:big_chat_graph`: each turn appends a message of
`--message-kb` (hex of random bytes: it compresses about as text does) and every
`--document-every` turns a document of `--document-mb` (a big single value: its own chunk),
until the state holds `--mb` megabytes. Each backend runs in its own subprocess (so its peak
memory is its own): the embedded store (SQLite + payload folder), PostgreSQL (a throwaway
server, `tests/postgres/server.py`), and DynamoDB + S3 + SQS on moto (under
`bench/moto_scaling.py`, which removes moto's own per-request copy of the whole table: without
it a step on moto grows with the thread's row count, which real DynamoDB does not). Printed
per backend:

- step ms: median wall time between consecutive steps (from `stream`), over the first 50
  steps and over the last 50, and their ratio (a step costs what it added: ~1x);
- max row: the largest stored row (`to_stored_json`) against `max_record_bytes` (350 KiB);
- stored: rows plus payload objects as the backend keeps them, against the raw bytes of the
  state (messages and documents);
- cold get_state: the head read by a reader with nothing cached, and whether it equals the
  state `invoke` returned; verify: `verify_thread` time and result;
- peak MiB: the child's maximum resident set size.

Then a dict grown a key a step (`--dict-steps`, `tests.big_state_graphs:dict_graph`: a
200-byte fact through a dict reducer and an index entry written back whole, per step): the
stored row at step 10 and at the last step, the bytes the store grew by (rows and payload
objects) over the last 10 steps, divided by 10, and the whole store divided by the steps
(snapshots included). With `--previous CHECKOUT` the same dict run is
made with that checkout's `shared/` first on the path, in the same run: before and after.
Also printed: the CPU time (`time.process_time`) of a step at steps 10-20 (dicts of about 10
keys) and over the last 10 steps (`--dict-steps` keys), and their ratio: a step that adds a
key costs what it added (issue 8 item 1), not the dict's size.

Nothing is asserted; the exit code is 0 unless the bench itself crashes.

    PYTHONPATH=$PWD/shared:$PWD .venv/bin/python bench/big_state.py --mb 100
    PYTHONPATH=$PWD/shared:$PWD .venv/bin/python bench/big_state.py --mb 10 --backends local
    PYTHONPATH=$PWD/shared:$PWD .venv/bin/python bench/big_state.py --mb 0 --previous /work/main
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.moto_scaling import scaled_moto
from durable_graph.backend import Backend
from durable_graph.backends.records import RecordStore
from durable_graph.clock import ManualClock
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread

BACKENDS = ("local", "postgres", "aws-moto")
WINDOW = 50  # steps at each end whose median step time is compared


def stored_bytes(backend: Backend, thread_id: str) -> dict[str, int]:
    """Rows as stored (their JSON) and payload objects, read from the backend's storage."""
    from durable_graph.backends.aws.s3_payloads import S3PayloadStore
    from durable_graph.backends.local.folder_payloads import FolderPayloadStore

    rows = backend.checkpoints.inner.list_checkpoints(thread_id, newest_first=False)
    sizes = [len(r.to_stored_json()) for r in rows]
    payloads: Any = raw_payloads(backend.payloads)
    if isinstance(payloads, FolderPayloadStore):
        objects = sum(p.stat().st_size for p in payloads.root.rglob("*") if p.is_file())
    elif isinstance(payloads, S3PayloadStore):
        objects = 0
        pages = payloads.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=payloads.bucket):
            objects += sum(int(o["Size"]) for o in page.get("Contents", []))
    else:  # PostgreSQL: a table of payload rows
        with payloads.db.connection("bench: payload bytes") as conn:
            objects = int(conn.execute("SELECT coalesce(sum(size), 0) FROM payloads").fetchone()[0])
    return {"rows": sum(sizes), "max_row": max(sizes), "objects": objects, "steps": len(rows)}


@contextlib.contextmanager
def opened(name: str, clock: ManualClock, prefix: str) -> Iterator[Backend]:
    """Backend `name` of the conformance suite in a temporary folder (under scaled moto for
    aws-moto), closed and removed after the block."""
    from tests.conformance.conftest import BACKEND_FACTORIES

    with (
        scaled_moto() if name == "aws-moto" else contextlib.nullcontext(),
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
        BACKEND_FACTORIES[name](Path(tmp), clock) as backend,
    ):
        yield backend


def child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from tests.big_state_graphs import big_chat_graph

    message = args.message_kb * 1024
    document = int(args.document_mb * 1024 * 1024)
    per_turn = message + document / args.document_every
    turns = math.ceil(args.mb * 1024 * 1024 / per_turn)
    clock = ManualClock()
    with opened(name, clock, "big-state-") as backend:
        app = big_chat_graph.with_backend(backend, clock=clock)
        start = time.perf_counter()
        stamps = [start]
        config = {"recursion_limit": 10**9}
        init = {
            "limit": turns,
            "message_bytes": message,
            "document_bytes": document,
            "document_every": args.document_every,
            "random_text": True,
        }
        for _ in app.stream(init, config, thread_id="big", stream_mode="updates"):
            stamps.append(time.perf_counter())
        total = time.perf_counter() - start
        values = app.get_state("big").values
        raw = sum(map(len, values["messages"])) + sum(map(len, values["documents"]))
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        early = statistics.median(steps[1 : WINDOW + 1])
        late = statistics.median(steps[-WINDOW:])
        cold = RecordStore(backend.checkpoints.inner, backend.payloads)
        t0 = time.perf_counter()
        head = cold.head_checkpoint("big")
        cold_ms = (time.perf_counter() - t0) * 1000
        equal = head is not None and head.values == values
        del head, cold
        t0 = time.perf_counter()
        verified = verify_thread(backend, "big").ok
        verify_s = time.perf_counter() - t0
        sizes = stored_bytes(backend, "big")
        return {
            "backend": name,
            "turns": turns,
            "raw_mb": raw / 2**20,
            "total_s": total,
            "early_ms": early * 1000,
            "late_ms": late * 1000,
            "max_row": sizes["max_row"],
            "limit": backend.max_record_bytes,
            "stored_mb": (sizes["rows"] + sizes["objects"]) / 2**20,
            "rows_mb": sizes["rows"] / 2**20,
            "cold_ms": cold_ms,
            "equal": equal,
            "verify_s": verify_s,
            "verified": verified,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def dict_child(name: str, steps: int) -> dict[str, Any]:
    """Row and store growth of a dict grown a key a step, on backend `name`."""
    from tests.big_state_graphs import dict_graph

    clock = ManualClock()
    with opened(name, clock, "big-dict-") as backend:
        app = dict_graph.with_backend(backend, clock=clock)
        config = {"recursion_limit": 10**9}
        app.invoke({"limit": 10}, config, thread_id="dict")
        cpu = time.process_time()
        app.invoke({"limit": 20}, config, thread_id="dict")  # steps 10-20: dicts of ~10 keys
        early_cpu = (time.process_time() - cpu) * 1000 / 10
        app.invoke({"limit": steps - 10}, config, thread_id="dict")
        before = stored_bytes(backend, "dict")
        started, cpu = time.perf_counter(), time.process_time()
        app.invoke({"limit": steps}, config, thread_id="dict")  # the next turn: 10 more steps
        last_ms = (time.perf_counter() - started) * 1000 / 10
        last_cpu = (time.process_time() - cpu) * 1000 / 10
        after = stored_bytes(backend, "dict")
        rows = backend.checkpoints.inner.list_checkpoints("dict", newest_first=False)
        grew = after["rows"] + after["objects"] - before["rows"] - before["objects"]
        return {
            "steps": len(rows) - 1,
            "row_10": len(rows[10].to_stored_json()),
            "row_last": len(rows[-1].to_stored_json()),
            "per_step": grew / (after["steps"] - before["steps"]),
            "all_steps": (after["rows"] + after["objects"]) / after["steps"],
            "ms": last_ms,
            "cpu_early": early_cpu,
            "cpu_last": last_cpu,
            "ops": sorted({c.op for c in rows[-1].changes.values()}),
        }


def run_dicts(args: argparse.Namespace) -> None:
    print(
        f"\n== a dict grown one 200-byte key a step, {args.dict_steps} steps "
        "(bytes stored per step over the last 10) =="
    )
    print(
        f"{'code':<10} {'backend':<9} {'row@10':>7} {'row@last':>9} {'B/step':>9} "
        f"{'B/step all':>10} {'ms/step':>8} {'CPU ms/step @10 keys/@last':>27}  ops"
    )
    here = Path(__file__).resolve().parent.parent
    codes = [("this", here)] + ([("previous", Path(args.previous))] if args.previous else [])
    for name in args.backends.split(","):
        for label, root in codes:
            env = {**os.environ, "PYTHONPATH": f"{root / 'shared'}:{here}"}
            command = [sys.executable, __file__, "--dict-child", name, *sys.argv[1:]]
            done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
            if done.returncode != 0:
                print(f"{label:<10} {name:<9} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{label:<10} {name:<9} {r['row_10']:>7,} {r['row_last']:>9,} "
                f"{r['per_step']:>9,.0f} {r['all_steps']:>10,.0f} {r['ms']:>8.1f} "
                f"{r['cpu_early']:>9.2f} /{r['cpu_last']:>6.2f} "
                f"({r['cpu_last'] / r['cpu_early']:4.1f}x)"
                f"  {','.join(r['ops'])}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="state size to reach")
    parser.add_argument("--message-kb", type=int, default=16)
    parser.add_argument("--document-mb", type=float, default=2.0)
    parser.add_argument("--document-every", type=int, default=25)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--dict-steps", type=int, default=500, help="0: no dict part")
    parser.add_argument("--previous", help="another checkout to run the dict part with too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dict-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    if args.dict_child:
        print(json.dumps(dict_child(args.dict_child, args.dict_steps)))
        return
    if args.mb > 0:
        run_big(args)
    if args.dict_steps > 0:
        run_dicts(args)


def run_big(args: argparse.Namespace) -> None:
    print(
        f"== a {args.mb:g} MB conversation: {args.message_kb} KB messages, a "
        f"{args.document_mb:g} MB document every {args.document_every} turns =="
    )
    header = (
        f"{'backend':<9} {'turns':>6} {'state MB':>9} {'run s':>7} {'step ms first/last':>19} "
        f"{'ratio':>6} {'max row B':>10} {'stored MB':>10} {'x raw':>6} {'cold get_state':>15} "
        f"{'verify s':>9} {'peak MiB':>9}"
    )
    print(header)
    for name in args.backends.split(","):
        command = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name:<9} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        cold = f"{r['cold_ms']:.0f} ms {'equal' if r['equal'] else 'DIFFERS'}"
        print(
            f"{name:<9} {r['turns']:>6} {r['raw_mb']:>9.1f} {r['total_s']:>7.1f} "
            f"{r['early_ms']:>9.2f}/{r['late_ms']:<9.2f} {r['late_ms'] / r['early_ms']:>5.2f}x "
            f"{r['max_row']:>10,} {r['stored_mb']:>10.1f} {r['stored_mb'] / r['raw_mb']:>5.2f}x "
            f"{cold:>15} {r['verify_s']:>6.1f} {'ok' if r['verified'] else 'BAD'} "
            f"{r['peak_mib']:>8.0f}"
        )
    print(f"(every row must stay under max_record_bytes = {350 * 1024:,} B)")


if __name__ == "__main__":
    main()
