"""`durable-graph gc`: delete the payload objects no thread needs any more (`payload_gc.py`).

Prints what it deleted (with `--dry-run`, what it would delete), in objects and bytes, and a
progress line on stderr every few seconds of a long run (`--quiet`: none). Exit 0 when it ran,
1 when it deleted nothing because some thread could not be read, 2 on bad input.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import timedelta
from typing import Any

from durable_graph.cli.common import backend, progress
from durable_graph.cli.output import emit_json
from durable_graph.errors import InvalidInput
from durable_graph.payload_gc import GRACE, Collected, Progress, collect

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
PROGRESS_EVERY = 2.0  # seconds between two progress lines


def register(sub: Any) -> None:
    gc = sub.add_parser(
        "gc",
        help="delete payload objects no thread needs (left by crashed writers)",
        description="Mark every payload object some thread needs (records, snapshots, fan-out "
        "rows, the objects values point to), then delete the others that were put before the "
        "grace period: chunks and segments of steps that never committed, segments merges "
        "retired that nobody deleted. Needs a process that may delete payloads.",
    )
    gc.add_argument(
        "--grace",
        metavar="DURATION",
        default=None,
        help="leave objects put less than this long ago (a step may be about to commit a "
        "record naming them): 90s, 15m, 1h, 2d (default 1h; longer than your longest step)",
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    gc.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    gc.add_argument("--json", action="store_true")
    gc.set_defaults(handler=cmd_gc)


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d` or plain seconds, positive; else `InvalidInput`."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise InvalidInput(
            f"--grace {text!r} is not a duration: a number and a unit, e.g. 90s, 15m, 1h, 2d",
            field="--grace",
        )
    seconds = float(found.group(1)) * _UNITS[found.group(2)]
    if seconds <= 0:
        raise InvalidInput(f"--grace {text!r} must be longer than zero", field="--grace")
    return timedelta(seconds=seconds)


def cmd_gc(args: argparse.Namespace) -> int:
    grace = GRACE if args.grace is None else parse_duration(args.grace)
    done = collect(
        backend(args.store),
        grace=grace,
        dry_run=args.dry_run,
        progress=None if args.quiet else _progress(),
    )
    if args.json:
        emit_json({**done.as_json(), "grace_seconds": grace.total_seconds()})
    else:
        _print(done, grace)
    return 1 if done.stopped else 0


def _progress() -> Progress:
    """A progress line on stderr at most every `PROGRESS_EVERY` seconds."""
    last = [0.0]

    def show(phase: str, done: Collected) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        if phase == "mark":
            progress(f"gc: marking: {done.threads:,} threads read, {done.marked:,} objects needed")
        else:
            progress(
                f"gc: sweeping: {done.listed:,} objects listed ({size(done.listed_bytes)}), "
                f"{done.unreferenced:,} unreferenced ({size(done.unreferenced_bytes)})"
            )

    return show


def _print(done: Collected, grace: timedelta) -> None:
    print(
        f"gc: {done.threads:,} thread(s) read, {done.marked:,} object(s) needed; "
        f"{done.listed:,} object(s) listed ({size(done.listed_bytes)})"
    )
    if done.stopped and not done.listed:
        print(f"nothing deleted: {done.stopped}")
        return
    verb = "would delete" if done.dry_run else "deleted"
    print(
        f"{verb} {done.deleted:,} unreferenced object(s) ({size(done.deleted_bytes)}) put "
        f"before {done.cutoff} (grace {grace})"
    )
    if done.kept:
        print(f"kept {done.kept:,} object(s) put again since then")
    if done.stopped:
        print(f"stopped: {done.stopped}")
    if done.recent:
        print(
            f"left {done.recent:,} unreferenced object(s) ({size(done.recent_bytes)}) put within "
            "the grace period: a step may be about to commit them (a later gc deletes any left)"
        )


def size(count: int) -> str:
    """Bytes for a person: 512 B, 3.4 KB, 12.0 MB, 1.2 GB."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover (the loop returns)
