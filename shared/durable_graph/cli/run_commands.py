"""Commands that move threads forward: run, resume, worker."""

from __future__ import annotations

import argparse
import os
import pwd
import socket
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from durable_graph.approval_rule import Approver, summary
from durable_graph.checkpoint import Actor
from durable_graph.cli.audit_commands import default_actor
from durable_graph.cli.common import (
    exit_code_for,
    graph,
    graph_of,
    print_status,
    progress_printer,
    runs_here,
    writable,
)
from durable_graph.cli.inputs import parse_json_arg, parse_json_object
from durable_graph.cli.output import emit_json
from durable_graph.engine import Engine
from durable_graph.errors import InvalidInput, ThreadFailed
from durable_graph.operator_keys import OperatorKey
from durable_graph.reading import status_document
from durable_graph.runtime import UNSET
from durable_graph.signoff import rule_of
from durable_graph.worker import Worker


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="start a thread, give it its next input, or continue it (imports the graph)",
        description="Start a thread, or give a completed (or failed) thread its next input: "
        "the same chain continues from START with the input folded into its state (a chat's "
        "next message). Without --input, run what an existing thread has queued. A thread that "
        "waits for a decision or is running refuses new input (exit 2): answer it with "
        "`resume`. Imports the application's graph module and runs its nodes here; on a "
        "store with deployed workers (aws://) it commits the input and they run it.",
    )
    run.add_argument("graph", help="import path of the compiled graph, e.g. pkg.module:graph")
    run.add_argument("--thread", required=True, help="thread id")
    run.add_argument(
        "--input",
        help="input as a JSON object (the first state, or the next turn's), or @file, or - "
        "for stdin (max 16 MiB)",
    )
    run.add_argument("--json", action="store_true", help="print the status as JSON")
    run.add_argument(
        "--detach",
        action="store_true",
        help="commit the input, leave the work to `durable-graph worker`",
    )
    run.set_defaults(handler=cmd_run)

    resume = sub.add_parser(
        "resume",
        help="inject a decision into a suspended thread, continue (imports the graph)",
        description="Write a decision into a suspended (or failed) thread. Imports the "
        "application's graph module (the decision is routed by its edges) and runs the thread "
        "on here; on a store with deployed workers (aws://) they run it.",
    )
    resume.add_argument("thread_id")
    resume.add_argument(
        "--values", help="state update as a JSON object, or @file, or - for stdin (max 16 MiB)"
    )
    resume.add_argument("--as-node", help="write the values as if this node had run")
    resume.add_argument("--resume-value", help="JSON value returned by interrupt() in the node")
    resume.add_argument("--expected-step", type=int, help="refuse if the head moved past this")
    resume.add_argument(
        "--actor",
        help="who decides (recorded in the ledger); default: your login name. A step whose "
        "node has an approval rule is decided as your OS account instead (docs/approvals.md)",
    )
    resume.add_argument(
        "--as",
        dest="as_identity",
        metavar="IDENTITY",
        help="under an approval rule: decide as this enrolled operator, signing the approval "
        "with --operator-key (whose certificate must name IDENTITY; `operator enrol`)",
    )
    resume.add_argument(
        "--operator-key",
        type=Path,
        metavar="KEY",
        help="the operator's private key for --as; its certificate is KEY's name with "
        ".cert.json, or --certificate",
    )
    resume.add_argument(
        "--certificate", type=Path, help="the operator certificate (default: beside the key)"
    )
    resume.add_argument(
        "--decision",
        choices=("approve", "reject"),
        default="approve",
        help="under an approval rule: approve (counts toward approvals_required) or reject "
        "(a veto decides at once)",
    )
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--detach", action="store_true", help="only commit the decision")
    resume.set_defaults(handler=cmd_resume)

    worker = sub.add_parser(
        "worker", help="drain the store's transition queue (imports each thread's graph)"
    )
    worker.add_argument("--until-idle", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--visibility-timeout",
        type=float,
        default=60.0,
        help="seconds a task stays leased before another worker may take it",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="tasks leased at once; their steps commit in one transaction (embedded, PostgreSQL)",
    )
    worker.add_argument(
        "--threads",
        type=_at_least_one,
        help="how many of them run at once (default: --concurrency); 1 for nodes that wait on "
        "no network: they run in turn on the worker's thread, without a pool's hand-overs",
    )
    worker.add_argument("--json", action="store_true")
    worker.set_defaults(handler=cmd_worker)


def _at_least_one(text: str) -> int:
    """A count of 1 or more (`worker --threads`): anything else exits 2, saying why."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    writable(args.store)
    app = graph(args.graph, args.store)
    values = parse_json_object(args.input, "--input")
    show = progress_printer(not args.json)
    with suppress(ThreadFailed):  # a failed thread is reported by its status (exit 1)
        if values is None and app.backend.checkpoints.head_checkpoint(args.thread) is not None:
            if runs_here(args):  # no new input: run what the thread has queued
                app.run_until_settled(args.thread, on_outcome=show)
        else:  # a new thread, or the next turn of a completed or failed one
            app.give_input(
                values,
                thread_id=args.thread,
                answer=_answer(args.thread),
                actor=Actor(kind="cli", id="run"),
                run=runs_here(args),
                on_outcome=show,
            )
    return _report(app, args.thread, args.json)


def _answer(thread_id: str) -> str:
    """How a CLI user answers the decision a thread waits for (said when `run` refuses new
    input for it)."""
    return (
        f"Answer it with `durable-graph resume {thread_id} --resume-value JSON` (or "
        "--values JSON --as-node NODE), or branch from an earlier step with `durable-graph fork`"
    )


def cmd_resume(args: argparse.Namespace) -> int:
    values = parse_json_object(args.values, "--values")
    resume_value = parse_json_arg(args.resume_value, "--resume-value")
    writable(args.store)
    app = graph_of(args.thread_id, args.store)
    actor = Actor(kind="human", id=args.actor or default_actor())
    head = app.backend.checkpoints.head_checkpoint(args.thread_id)
    approver = None
    rule = (
        rule_of(app.spec.nodes, head, app.backend)
        if head is not None and head.status == "suspended"
        else None
    )
    operator = operator_of(args, governed=rule is not None)
    if head is not None and rule is not None:
        # A self-declared `--actor` is not who decides a governed step: the OS account (or an
        # enrolled operator's key) is.
        if args.actor is not None:
            raise InvalidInput(
                f"step {head.step} waits at {head.interrupt.node!r} under an approval rule "  # type: ignore[union-attr]
                f"({summary(rule)}), which the CLI decides as your OS account "
                f"({os_account().actor.id}) or as an enrolled operator (--as with "
                "--operator-key), not as --actor: drop --actor (docs/approvals.md)",
                field="--actor",
            )
        approver = operator or os_account()
    with suppress(ThreadFailed):  # a failed thread is reported by its status (exit 1)
        app.resume(
            args.thread_id,
            values=values,
            as_node=args.as_node,
            resume_value=resume_value if args.resume_value is not None else UNSET,
            expected_step=args.expected_step,
            actor=actor,
            run=runs_here(args),
            on_outcome=progress_printer(not args.json),
            approver=approver,
            decision=args.decision,
            via="cli",
        )
    return _report(app, args.thread_id, args.json)


def operator_of(args: argparse.Namespace, *, governed: bool) -> Approver | None:
    """The enrolled operator `--as IDENTITY --operator-key KEY` decides as (None without
    `--as`). Refused (exit 2, before anything is written) without a key, with a certificate
    that is not for that key or names someone else, and on a step no approval rule governs
    (there is no signoff to sign). Whether this store's ledger key enrolled it, `sign_off`
    checks, on every path."""
    if args.as_identity is None:
        if args.operator_key is not None or args.certificate is not None:
            raise InvalidInput(
                "--operator-key and --certificate go with --as IDENTITY", field="--as"
            )
        return None
    if args.operator_key is None:
        raise InvalidInput(
            f"--as {args.as_identity} needs the operator's key (--operator-key KEY), whose "
            "certificate names that identity (durable-graph operator enrol)",
            field="--operator-key",
        )
    if args.actor is not None:
        raise InvalidInput("--as and --actor name who decides twice: give one", field="--actor")
    key = OperatorKey.load(args.operator_key, args.certificate)
    approver = key.approver(args.as_identity)
    if not governed:
        raise InvalidInput(
            f"{args.thread_id} does not wait under an approval rule: --as signs approvals toward "
            "one; decide with --actor (docs/approvals.md)",
            field="--as",
        )
    return approver


def os_account() -> Approver:
    """Who runs this CLI: the operating-system account of the process's real uid (not
    `$USER`, which anyone can set), on this host. As trustworthy as the store's own write
    permissions: whoever may write the store as this account may also write its rows."""
    user = pwd.getpwuid(os.getuid()).pw_name
    host = socket.gethostname()
    return Approver(
        key=f"os:{host}:{user}",
        actor=Actor(kind="human", id=f"os:{user}@{host}"),
        method="os_user",
        aliases=frozenset({user}),
    )


def cmd_worker(args: argparse.Namespace) -> int:
    def engine_for(name: str) -> Engine:
        return graph(name, args.store).engine()

    worker = Worker(
        writable(args.store),
        engine_for,
        visibility_timeout=args.visibility_timeout,
        concurrency=args.concurrency,
        threads=args.threads,
        on_outcome=progress_printer(not args.json),
    )
    stats = worker.run(until_idle=args.until_idle, max_seconds=None)
    summary = {
        "committed": stats.committed,
        "duplicates": stats.duplicates,
        "failed_threads": stats.failed_threads,
        "retried": stats.retried,
    }
    if args.json:
        emit_json(summary)
    else:
        print(
            f"worker idle: {stats.committed} steps committed, {stats.duplicates} duplicates "
            f"skipped, {stats.failed_threads} threads failed",
            file=sys.stderr,
        )
    return 0


def _report(app: Any, thread_id: str, as_json: bool) -> int:
    doc = status_document(app.backend, thread_id)
    if as_json:
        emit_json(doc)
    else:
        print_status(doc)
    return exit_code_for(doc["status"])
