"""`durable-graph` (also `python -m durable_graph`): the command line.

Names, flags and JSON shapes are a public contract. Exit codes: 0 completed/suspended/ok,
1 failed thread or failed verification, 2 usage errors and bad input (nothing stored changed).
Each group of commands lives in its own module and registers itself through `COMMAND_MODULES`.

`--store URI` (before or after the command name; default `$DURABLE_GRAPH_STORE`, else the
embedded store) picks the store for every command (`durable_graph.store_uri`). Reading commands
(status, history, show, diff, verify, export, sign, ledger-key) need only the store; run, resume,
replay, fork and worker also import the application's graph.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence

from durable_graph.backends.local.storage_errors import is_corruption
from durable_graph.cli.logs import configure as configure_logs
from durable_graph.cli.output import Exit, fail_usage
from durable_graph.errors import DurableGraphError, StoreUnreadable, UserError
from durable_graph.store_uri import STORE_ENV, parse_store_uri, schemes, store_folder

COMMAND_MODULES = [
    "durable_graph.cli.run_commands",
    "durable_graph.cli.read_commands",
    "durable_graph.cli.serve_commands",
    "durable_graph.cli.audit_commands",
    "durable_graph.cli.graph_commands",
    "durable_graph.cli.db_commands",
    "durable_graph.cli.governance_commands",
    "durable_graph.cli.gc_commands",
    "durable_graph.cli.operator_commands",
]


STORE_HELP = (
    f"where the threads live: {', '.join(s + ':' for s in schemes())} URIs such as "
    f"sqlite:///path/folder or aws://STACK (default ${STORE_ENV}, else the embedded store "
    "in $DURABLE_GRAPH_HOME or ./.durable-graph)"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        fail_usage(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="durable-graph",
        description="Durable, auditable execution for AI agent graphs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine events")
    parser.add_argument(
        "--log-json", action="store_true", help="logs as JSON lines (thread_id, step, node...)"
    )
    parser.add_argument("--store", metavar="URI", default=None, help=STORE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():
        # After the command name too; SUPPRESS keeps the value given before it.
        command.add_argument("--store", metavar="URI", default=argparse.SUPPRESS, help=STORE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_utf8(arguments)
        args = parser.parse_args(arguments)
        configure_logs(verbose=args.verbose, as_json=args.log_json)
        code: int = args.handler(args)
        return code
    except Exit as exit_:
        return exit_.code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DurableGraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        # Damage SQLite found past the pages it read on opening the store (see Database).
        folder = store_folder(parse_store_uri(_store_argument(arguments)))
        print(f"error: {StoreUnreadable(str(folder / 'state.db'), str(exc))}", file=sys.stderr)
        return 2


def _store_argument(arguments: list[str]) -> str | None:
    """The last `--store` among the arguments (what argparse chose), or None."""
    found = None
    for position, argument in enumerate(arguments):
        if argument == "--store" and position + 1 < len(arguments):
            found = arguments[position + 1]
        elif argument.startswith("--store="):
            found = argument.partition("=")[2]
    return found


def _check_utf8(arguments: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python hands its bytes over as lone surrogates,
    which no store can write, and which would fail far from here)."""
    for position, argument in enumerate(arguments, start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(argument)
            fail_usage(f"argument {position} is not valid UTF-8: {raw!r}")
