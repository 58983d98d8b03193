"""Commands that only read: status, history, show.

They work from the store alone (`durable_graph.reading`): no application module is imported, so
they run on an auditor's machine without the application, against any store URI.
"""

from __future__ import annotations

import argparse
from typing import Any

from durable_graph.canonical import digest
from durable_graph.cli.common import backend, print_approvals, print_status
from durable_graph.cli.output import emit_json, table
from durable_graph.erasure_record import describe_erased
from durable_graph.reading import history, history_row, show_document, status_document


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="a thread's status, next tasks and values")
    status.add_argument("thread_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    history = sub.add_parser("history", help="every step of a thread, newest first")
    history.add_argument("thread_id")
    history.add_argument("--limit", type=int)
    history.add_argument("--before", type=int, help="only steps before this one (paging)")
    history.add_argument("--node", help="only steps where this node ran")
    history.add_argument("--source", choices=["input", "node", "update", "fork"])
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=cmd_history)

    show = sub.add_parser("show", help="one past checkpoint with its values")
    show.add_argument("thread_id")
    show.add_argument("--step", type=int, required=True)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)
    # `verify` lives in audit_commands.py with the other ledger commands.


def cmd_status(args: argparse.Namespace) -> int:
    doc = status_document(backend(args.store), args.thread_id)
    if args.json:
        emit_json(doc)
    else:
        print_status(doc)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    store = backend(args.store)
    records = history(
        store,
        args.thread_id,
        limit=args.limit,
        before=args.before,
        node=args.node,
        source=args.source,
    )
    rows = [history_row(r) for r in records]
    if args.json:
        emit_json(rows)
    else:
        record = store.checkpoints.get_thread(args.thread_id)
        if record is not None and record.origin is not None:
            origin = record.origin
            print(f"forked from {origin.thread_id} step {origin.step} (hash {origin.hash[:12]})")
        print(
            table(
                ["step", "source", "node", "status", "actor", "hash", "created_at"],
                [
                    [
                        r["step"],
                        r["source"],
                        ",".join(r["nodes"]) or "-",
                        r["status"],
                        f"{r['actor']['kind']}:{r['actor']['id']}"[:24],
                        r["hash"][:12],
                        r["created_at"],
                    ]
                    for r in rows
                ],
            )
        )
    return 0


NULL_DIGEST = digest(None)  # what a recorded None response hashes to (an erased one differs)


def _short(value: object) -> str:
    """A value on one line: "erased at step N by X" for an erased one, else its repr, cut."""
    text = describe_erased(value) or repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def cmd_show(args: argparse.Namespace) -> int:
    doc = show_document(backend(args.store), args.thread_id, args.step)
    if args.json:
        emit_json(doc)
        return 0
    print(f"thread {doc['thread_id']}  step {doc['step']}  ({doc['source']}, {doc['status']})")
    print(f"nodes  {', '.join(doc['nodes']) or '-'}")
    print(f"next   {', '.join(t['node'] for t in doc['next']) or '-'}")
    for route in doc["route"]:
        router = f"({route['router']})" if route.get("router") else ""
        print(f"route  {route['source']} --{route['kind']}{router}--> {route['result']}")
    for task in doc["next"]:
        if task.get("arg") is not None:
            print(f"arg    {task['id']}: {_short(task['arg'])}")
    interrupt = doc.get("interrupt")
    if interrupt and interrupt.get("payload") is not None:
        print(f"waits  {interrupt['node']} ({interrupt['when']}): {_short(interrupt['payload'])}")
    for task_id, values in (doc.get("resume") or {}).items():
        print(f"resume {task_id}: {', '.join(_short(v) for v in values)}")
    error = doc.get("error")
    if error:
        print(f"error  {error['type']} in {error['node']!r}: {error['message']}")
    for io in doc["io"]:
        erased = (
            io["response"] is None and io.get("s") is None and io["response_sha256"] != NULL_DIGEST
        )
        response = "(erased)" if erased else repr(io["response"])
        response = response if len(response) <= 80 else response[:77] + "..."
        print(
            f"io     {io['kind']} {io['name']} (task {io['task_id']}) response sha256 "
            f"{io['response_sha256'][:12]}: {response}"
        )
    print(f"actor  {doc['actor']['kind']}:{doc['actor']['id']}")
    if doc.get("approvals"):
        print_approvals(doc["approvals"])
    print(f"hash   {doc['hash']}\nprev   {doc['prev_hash']}")
    print("values:")
    for key, value in doc["values"].items():
        print(f"  {key}: {describe_erased(value) or repr(value)}")
    return 0
