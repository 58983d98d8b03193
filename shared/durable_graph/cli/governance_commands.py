"""Governance commands: `erase` (a thread's values, keeping the proof) and `retention run`.

Exit codes follow the CLI contract: 0 done, 2 bad input (nothing stored changed).
`docs/erasure-and-retention.md` walks through both with real output.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from durable_graph.checkpoint import Actor
from durable_graph.cli.audit_commands import default_actor
from durable_graph.cli.common import backend, progress
from durable_graph.cli.output import emit_json
from durable_graph.clock import SystemClock
from durable_graph.erasure import erase
from durable_graph.erasure_parts import PARTS
from durable_graph.erasure_record import ErasureRecord
from durable_graph.errors import InvalidInput
from durable_graph.listing import MAX_PAGE
from durable_graph.payload_deletes import GRACE
from durable_graph.pending_deletes import finish_deletes
from durable_graph.retention import PAGE, RetentionRun, run_retention
from durable_graph.retention_cursor import Totals


def register(sub: Any) -> None:
    e = sub.add_parser(
        "erase",
        help="erase a thread's values (everything, or --fields / --parts) keeping their digests",
        description="Destroy the values (and their salts) of the named state fields at every "
        "step, and the payload objects no other thread refers to; the digests stay, so "
        "verify still passes and lists what was erased. --parts erases what the records hold "
        "besides the state: task arguments, interrupt payloads, resume values, error "
        "messages, io responses. Without --fields and --parts, everything. Appends a signed "
        "erasure record.",
    )
    e.add_argument("thread_id")
    e.add_argument(
        "--fields", help="comma-separated state fields (default: every field, unless --parts)"
    )
    e.add_argument(
        "--parts",
        help=f"comma-separated record parts: {','.join(PARTS)} (default: every part, unless "
        "--fields)",
    )
    e.add_argument("--reason", required=True, help="why (recorded and signed)")
    e.add_argument("--actor", default=None, help="who erases (recorded); default: your login")
    e.add_argument(
        "--wait",
        action="store_true",
        help=f"delete shared objects stored less than {GRACE.seconds} s ago before returning, "
        "waiting that out (default: schedule them for the next retention run or erase)",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=cmd_erase)

    r = sub.add_parser("retention", help="retention policies (values older than N days)")
    actions = r.add_subparsers(dest="action", required=True)
    run = actions.add_parser(
        "run",
        help="erase values older than each graph's retention policy",
        description="For every settled thread whose graph has a retention policy "
        "(compile(retention=...)), erase the values of steps older than the policy allows, "
        "leaving the chain and a signed tombstone (an erasure record).",
    )
    run.add_argument(
        "--graph",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="a graph whose policy applies (repeatable; imports it); default: every graph "
        "the store's threads name, imported",
    )
    run.add_argument(
        "--as-of",
        metavar="ISO",
        help="apply the policies as of this UTC time (e.g. 2027-01-31T00:00:00Z) instead of "
        "now: a fixed cutoff for a scheduled job, or a later one to see what it will erase",
    )
    run.add_argument(
        "--max-seconds",
        type=float,
        metavar="N",
        help="stop after about N seconds, saving where it got to: the next run continues the "
        "pass (a long pass over a big store, split across runs); default: run the pass out",
    )
    run.add_argument(
        "--page-size",
        type=int,
        default=PAGE,
        metavar="N",
        help=f"threads read per page, and between two saves of the position (default {PAGE})",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=cmd_retention_run)


def _fields(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


def cmd_erase(args: argparse.Namespace) -> int:
    store = backend(args.store)
    record = erase(
        store,
        args.thread_id,
        fields=_fields(args.fields),
        parts=_fields(args.parts),
        reason=args.reason,
        actor=Actor(kind="cli", id=args.actor or default_actor()),
    )
    if args.wait and record is not None and record.scheduled:
        clock = SystemClock()
        clock.sleep(GRACE.total_seconds() + 1)
        done = finish_deletes(store, clock, thread_id=args.thread_id)
        record = record.with_scheduled(done.waiting)
    if args.json:
        emit_json(
            {**record.model_dump(mode="json"), "scheduled": record.scheduled}
            if record
            else {"erased": None}
        )
    elif record is None:
        print(f"nothing left to erase in {args.thread_id}")
    else:
        print_erasure(record)
    return 0


def print_erasure(record: ErasureRecord) -> None:
    steps = sorted(record.steps, key=int)
    fields = sorted({f for names in record.steps.values() for f in names})
    print(
        f"erased {', '.join(fields) or 'nothing'} of {record.thread_id} at "
        f"{len(steps)} step(s) ({', '.join(steps) or '-'}); "
        f"{sum(len(v) for v in record.io.values())} io response(s); "
        f"{sum(len(v) for v in record.parts.values())} other part(s); "
        f"{len(record.payloads) - len(record.scheduled)} payload object(s) deleted"
        + (
            f", {len(record.scheduled)} scheduled (stored less than {GRACE.seconds} s ago: "
            "the next `retention run` or `erase` of this thread deletes them)"
            if record.scheduled
            else ""
        )
    )
    signed = f"signed by key {record.key_id}" if record.signature else "unsigned (no ledger key)"
    print(
        f"erasure record {record.seq} by {record.actor.kind}:{record.actor.id} at "
        f"{record.erased_at}, {signed}"
    )
    print(f"reason: {record.reason}")
    if record.data_key:
        print(
            f"data key destroyed (wrapped by {record.data_key}): its encrypted values are "
            "unreadable wherever they are copied"
        )
    for step, names in sorted(record.parts.items(), key=lambda item: int(item[0])):
        print(f"  erased at step {step}: {', '.join(names)}")
    for kept in record.kept:
        print(f"  kept: step {kept['step']}: {kept['why']}")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--as-of {text!r} is not an ISO 8601 time", field="--as-of") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--as-of {text!r} needs a time zone (Z for UTC)", field="--as-of")
    return moment.astimezone(UTC)


def cmd_retention_run(args: argparse.Namespace) -> int:
    as_of = None if args.as_of is None else _instant(args.as_of)
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise InvalidInput("--max-seconds must be > 0", field="--max-seconds")
    if not 1 <= args.page_size <= MAX_PAGE:
        raise InvalidInput(f"--page-size must be between 1 and {MAX_PAGE}", field="--page-size")
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    run = run_retention(
        backend(args.store),
        graphs=args.graph,
        as_of=as_of,
        time_left=None if deadline is None else lambda: deadline - time.monotonic(),
        page_size=args.page_size,
        progress=None if args.quiet else _show_progress,
    )
    if args.json:
        emit_json(
            {
                "erased": [r.model_dump(mode="json") for r in run.erased],
                "totals": run.totals.model_dump(),
                "finished": run.finished,
                "stopped": run.stopped,
                "pass_totals": run.pass_totals.model_dump(),
                "deletes": asdict(run.deletes),
            }
        )
        return 0
    done = run.deletes
    if done.deleted or done.waiting or done.kept:
        print(
            f"scheduled deletes: {len(done.deleted)} payload object(s) deleted, "
            f"{len(done.waiting)} stored again (still scheduled), {len(done.kept)} kept "
            "(a thread refers to them again)"
        )
    for record in run.erased:
        print_erasure(record)
    print(f"retention: {_counts(run.totals)}")
    if run.finished:
        print("pass finished: the next run starts a new one")
    else:
        print(f"stopped: {run.stopped}; this pass so far: {_counts(run.pass_totals)}")
    return 0


def _counts(totals: Totals) -> str:
    return (
        f"{totals.checked} thread(s) checked: {totals.erased} erased, "
        f"{totals.unchanged} unchanged, {totals.skipped} skipped (no policy), "
        f"{totals.failed} failed"
    )


def _show_progress(run: RetentionRun) -> None:
    progress(f"retention: {_counts(run.pass_totals)}")
