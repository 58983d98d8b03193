"""Commands that only read: status, history, show."""

from __future__ import annotations

import argparse
from typing import Any

from durable_graph.cli.common import graph_of, print_status, status_document
from durable_graph.cli.output import emit_json, table


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
    doc = status_document(graph_of(args.thread_id), args.thread_id)
    if args.json:
        emit_json(doc)
    else:
        print_status(doc)
    return 0


def history_row(snapshot: Any) -> dict[str, Any]:
    checkpoint = snapshot.checkpoint
    return {
        "step": checkpoint.step,
        "node": checkpoint.nodes[0] if checkpoint.nodes else None,
        "nodes": list(checkpoint.nodes),
        "source": checkpoint.source,
        "status": checkpoint.status,
        "actor": checkpoint.actor.model_dump(),
        "hash": checkpoint.hash,
        "prev_hash": checkpoint.prev_hash,
        "parent": checkpoint.parent.model_dump() if checkpoint.parent else None,
        "created_at": checkpoint.created_at,
    }


def cmd_history(args: argparse.Namespace) -> int:
    app = graph_of(args.thread_id)
    snapshots = app.get_state_history(
        args.thread_id, limit=args.limit, before=args.before, node=args.node, source=args.source
    )
    rows = [history_row(s) for s in snapshots]
    if args.json:
        emit_json(rows)
    else:
        record = app.backend.checkpoints.get_thread(args.thread_id)
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


def cmd_show(args: argparse.Namespace) -> int:
    app = graph_of(args.thread_id)
    snapshot = app.get_state(args.thread_id, step=args.step)
    doc = snapshot.checkpoint.model_dump(mode="json")
    doc["stored_values"] = doc.pop("values")
    doc["values"] = snapshot.values
    if args.json:
        emit_json(doc)
    else:
        checkpoint = snapshot.checkpoint
        print(
            f"thread {checkpoint.thread_id}  step {checkpoint.step}  ({checkpoint.source}, "
            f"{checkpoint.status})"
        )
        print(f"nodes  {', '.join(checkpoint.nodes) or '-'}")
        print(f"next   {', '.join(t.node for t in checkpoint.next) or '-'}")
        for route in checkpoint.route:
            print(
                f"route  {route.source} --{route.kind}"
                f"{'(' + route.router + ')' if route.router else ''}--> {route.result}"
            )
        for io in checkpoint.io:
            response = repr(io.response)
            response = response if len(response) <= 80 else response[:77] + "..."
            print(
                f"io     {io.kind} {io.name} (task {io.task_id}) response sha256 "
                f"{io.response_sha256[:12]}: {response}"
            )
        print(f"actor  {checkpoint.actor.kind}:{checkpoint.actor.id}")
        print(f"hash   {checkpoint.hash}\nprev   {checkpoint.prev_hash}")
        print("values:")
        for key, value in snapshot.values.items():
            print(f"  {key}: {value!r}")
    return 0
