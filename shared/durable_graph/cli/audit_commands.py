"""Time travel and audit commands: diff, fork, replay, verify, sign, export.

Exit codes follow the CLI contract: 0 ok, 1 a failed verification (or a replay that does not
reproduce), 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from durable_graph.bundle import export_bundle, load_bundle, verify_bundle
from durable_graph.checkpoint import Actor
from durable_graph.cli.common import (
    backend,
    exit_code_for,
    graph_of,
    print_status,
    progress,
    progress_printer,
    runs_here,
    writable,
)
from durable_graph.cli.inputs import parse_json_object
from durable_graph.cli.output import emit_json, fail_usage
from durable_graph.clock import SystemClock
from durable_graph.erasure_record import describe_erased
from durable_graph.errors import (
    CorruptRecord,
    DataKeyUnavailable,
    InvalidInput,
    ThreadFailed,
    ThreadNotFound,
)
from durable_graph.ledger_report import VerifyReport
from durable_graph.reading import status_document
from durable_graph.signing import PublicKey, key_of_pem, sign_head
from durable_graph.timetravel import diff, fork, read_step, replay
from durable_graph.verification import VERIFY_PAGE, verify_all, verify_thread


def default_actor() -> str:
    """Who is at the keyboard, for the ledger: `--actor` overrides it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def register(sub: Any) -> None:
    d = sub.add_parser("diff", help="which state fields changed between two steps")
    d.add_argument("thread_id")
    d.add_argument("a", type=int, help="the earlier step")
    d.add_argument("b", type=int, help="the later step")
    d.add_argument("--thread-b", help="take step B from this thread (e.g. a fork)")
    d.add_argument("--fetch", action="store_true", help="show offloaded payloads' content")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=cmd_diff)

    f = sub.add_parser(
        "fork",
        help="start a new thread from any past step of a thread (imports the graph)",
        description="Start a new thread from a past step. Imports the application's graph "
        "module (the fork routes and runs under it); on a store with deployed workers "
        "(aws://) it only commits the fork's step 0 and they run it.",
    )
    f.add_argument("thread_id")
    f.add_argument("--step", type=int, required=True)
    f.add_argument("--new-thread", required=True)
    f.add_argument("--values", help="state update applied to the fork's step 0 (JSON object)")
    f.add_argument("--actor", default=None, help="who forks (recorded); default: your login")
    f.add_argument("--detach", action="store_true", help="only commit step 0 of the fork")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=cmd_fork)

    r = sub.add_parser(
        "replay",
        help="re-run the node of a step on its recorded inputs (imports the graph)",
        description="Re-execute the node that wrote a step, fed its recorded external inputs, "
        "and compare. Imports and runs the application's graph module.",
    )
    r.add_argument("thread_id")
    r.add_argument("--step", type=int, required=True)
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_replay)

    v = sub.add_parser("verify", help="check hashes, links, payloads, transitions, signatures")
    v.add_argument("thread_id", nargs="?")
    v.add_argument("--all", action="store_true", help="verify every thread, print a summary")
    v.add_argument("--bundle", type=Path, help="verify an exported bundle, offline")
    v.add_argument(
        "--trusted-key", type=Path, help="PEM public key the bundle's signatures must be by"
    )
    v.add_argument("--json", action="store_true")
    v.add_argument("--quiet", action="store_true", help="no progress lines (verify --all)")
    v.set_defaults(handler=cmd_verify)

    s = sub.add_parser("sign", help="sign a thread's current head with the ledger key")
    s.add_argument("thread_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_sign)

    k = sub.add_parser("ledger-key", help="the ledger's public key (to pin with --trusted-key)")
    k.add_argument("--out", type=Path, help="also write the PEM public key to this file")
    k.add_argument("--json", action="store_true")
    k.set_defaults(handler=cmd_ledger_key)

    e = sub.add_parser("export", help="write a self-contained audit bundle of a thread")
    e.add_argument("thread_id")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=cmd_export)


# ------------------------------------------------------------------------------ time travel


def _short(value: Any, width: int = 90) -> str:
    text = describe_erased(value) or json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_diff(args: argparse.Namespace) -> int:
    doc = diff(
        backend(args.store),
        args.thread_id,
        args.a,
        args.b,
        fetch=args.fetch,
        thread_b=args.thread_b,
    )
    if args.json:
        emit_json(doc)
        return 0
    a, b = doc["a"], doc["b"]
    print(f"--- {a['thread_id']} step {a['step']}  {a['status']:<9} {a['hash'][:12]}")
    print(f"+++ {b['thread_id']} step {b['step']}  {b['status']:<9} {b['hash'][:12]}")
    for change in doc["changes"]:
        name = change["field"]
        if change["change"] == "appended":
            print(f"  {name}: appended {_short(change['appended'])}")
        elif change["change"] == "added":
            print(f"+ {name}: {_short(change['new'])}")
        elif change["change"] == "removed":
            print(f"- {name}: {_short(change['old'])}")
        else:
            print(f"~ {name}: {_short(change['old'], 60)} -> {_short(change['new'], 60)}")
    print(f"({len(doc['changes'])} changed, {len(doc['unchanged'])} unchanged)")
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    values = parse_json_object(args.values, "--values")
    writable(args.store)
    app = graph_of(args.thread_id, args.store)
    fork(
        app,
        args.thread_id,
        args.step,
        args.new_thread,
        values,
        actor=Actor(kind="human", id=args.actor or default_actor()),
    )
    if runs_here(args) and app.backend.checkpoints.head_checkpoint(args.new_thread) is not None:
        head = app.engine().head(args.new_thread)
        if head.status == "running":
            with suppress(ThreadFailed):  # a failed fork is reported by its status (exit 1)
                app.run_until_settled(args.new_thread, on_outcome=progress_printer(not args.json))
    doc = status_document(app.backend, args.new_thread)
    if args.json:
        emit_json(doc)
    else:
        print_status(doc)
    return exit_code_for(doc["status"])


def cmd_replay(args: argparse.Namespace) -> int:
    app = graph_of(args.thread_id, args.store)
    report = replay(app, args.thread_id, args.step)
    if args.json:
        emit_json(report.as_json())
    else:
        print(f"replay {args.thread_id} step {args.step}: {report.verdict}")
        print(f"  {report.reason}")
        for task in report.tasks:
            print(
                f"  task {task.task_id} ({task.node}): {task.outcome}, fed "
                f"{task.used_inputs} of {task.recorded_inputs} recorded input(s)"
            )
        for difference in report.differences:
            label = difference.get("field", difference["what"])
            print(
                f"  differs: {label}: recorded {_short(difference['recorded'], 50)}, "
                f"replayed {_short(difference['replayed'], 50)}"
            )
    return 1 if report.verdict in ("diverged", "not_reproducible") else 0


# ------------------------------------------------------------------------------------ audit


def _print_report(report: VerifyReport, label: str) -> None:
    if report.ok:
        signed = ", ".join(str(s) for s in report.signed_steps) or "none"
        print(
            f"ok: {report.checked} checkpoints of {label} verified "
            f"({', '.join(report.checks)}); signed heads at steps: {signed}"
        )
    else:
        print(f"FAILED: {label}: {report.reason}")
        for check, step in report.first_by_check().items():
            print(f"  first {check} failure: step {step}")
        for problem in report.problems[1:]:
            print(f"  also: step {problem['step']}: {problem['check']}: {problem['reason']}")
    for step, who in sorted(report.approved.items()):
        print(f"  approved at step {step} by {', '.join(who)}")
    for step, fields in sorted(report.erased.items()):
        print(f"  erased at step {step}: {', '.join(fields)}")
    for erasure in report.erasures:
        print(
            f"  erasure {erasure['seq']} by {erasure['by']} at {erasure['erased_at']}: "
            f"{erasure['reason']}"
            + (" (data key destroyed)" if erasure.get("data_key_destroyed") else "")
        )
    for note in report.notes:
        print(f"  note: {note}")


def _progress(enabled: bool) -> Callable[[int, VerifyReport], None] | None:
    """`verify --all`'s progress on stderr: every page of threads, and each failure as found."""

    def show(done: int, report: VerifyReport) -> None:
        if not report.ok:
            progress(f"FAILED {report.thread_id} ({done} verified)")
        elif done % VERIFY_PAGE == 0:
            progress(f"verified {done} threads...")

    return show if enabled else None


def _trusted(path: Path | None) -> list[PublicKey] | None:
    if path is None:
        return None
    try:
        return [key_of_pem(path.read_text(encoding="ascii"))]
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"--trusted-key {path}: {exc}", field="--trusted-key") from None


def cmd_verify(args: argparse.Namespace) -> int:
    chosen = sum(x is not None and x is not False for x in (args.thread_id, args.bundle, args.all))
    if chosen != 1:
        fail_usage("verify takes exactly one of: THREAD_ID, --all, --bundle FILE")
    if args.bundle is not None:
        bundle = load_bundle(args.bundle)
        report = verify_bundle(bundle, trusted=_trusted(args.trusted_key))
        if args.json:
            emit_json({**report.as_json(), "bundle": str(args.bundle)})
        else:
            _print_report(report, f"{bundle.thread_id} (bundle {args.bundle})")
        return 0 if report.ok else 1
    if args.all:
        reports = verify_all(backend(args.store), progress=_progress(not args.quiet))
        failed = [r for r in reports if not r.ok]
        if args.json:
            emit_json(
                {
                    "ok": not failed,
                    "threads": len(reports),
                    "verified": len(reports) - len(failed),
                    "failed": len(failed),
                    "reports": [r.as_json() for r in reports],
                }
            )
        else:
            for report in reports:
                state = "ok    " if report.ok else "FAILED"
                detail = (
                    f"{report.checked} steps, signed at {report.signed_steps or '-'}"
                    if report.ok
                    else report.reason
                )
                print(f"{state} {report.thread_id:<30} {detail}")
            print(f"{len(reports)} threads: {len(reports) - len(failed)} ok, {len(failed)} failed")
        return 0 if not failed else 1
    store = backend(args.store)
    try:
        exists = store.checkpoints.head_checkpoint(args.thread_id) is not None
    except (CorruptRecord, DataKeyUnavailable):
        exists = True  # an unreadable head (or one sealed with a key not at hand): verify it
    if not exists and store.checkpoints.get_thread(args.thread_id) is None:
        raise ThreadNotFound(args.thread_id)
    report = verify_thread(store, args.thread_id)
    if args.json:
        emit_json(report.as_json())
    else:
        _print_report(report, args.thread_id)
    return 0 if report.ok else 1


def cmd_sign(args: argparse.Namespace) -> int:
    store = backend(args.store)
    if store.signer is None:
        raise InvalidInput("this backend has no ledger key configured")
    head = store.checkpoints.head_checkpoint(args.thread_id)
    if head is None:
        raise ThreadNotFound(args.thread_id)
    head = read_step(store, args.thread_id, head.step)
    signature = sign_head(store.checkpoints, store.signer, head, SystemClock())
    doc = signature.model_dump(mode="json")
    if args.json:
        emit_json(doc)
    else:
        print(
            f"signed {args.thread_id} step {signature.step} ({signature.step_count} steps, head "
            f"{signature.head_hash[:12]}) with key {signature.key_id} at {signature.signed_at}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    bundle = export_bundle(backend(args.store), args.thread_id, args.out)
    doc = {
        "thread_id": bundle.thread_id,
        "out": str(args.out),
        "records": len(bundle.records),
        "payloads": len(bundle.payloads),
        "signatures": len(bundle.signatures),
        "key_ids": [k.key_id for k in bundle.public_keys],
        "bytes": args.out.stat().st_size,
    }
    if args.json:
        emit_json(doc)
    else:
        print(
            f"exported {doc['records']} records, {doc['payloads']} payloads, "
            f"{doc['signatures']} signatures of {bundle.thread_id} to {args.out} "
            f"({doc['bytes']} bytes, key {', '.join(doc['key_ids']) or '-'})"
        )
    return 0


def cmd_ledger_key(args: argparse.Namespace) -> int:
    store = backend(args.store)
    if store.signer is None:
        raise InvalidInput("this backend has no ledger key configured")
    key = store.signer.public_key()
    if args.out is not None:
        args.out.write_text(key.pem, encoding="ascii")
    if args.json:
        emit_json(key.model_dump())
    else:
        print(f"key id     {key.key_id}\nalgorithm  {key.algorithm}")
        print(key.pem, end="")
    return 0
