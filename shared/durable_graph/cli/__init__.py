"""`durable-graph` (also `python -m durable_graph`): the command line.

Names, flags and JSON shapes are a public contract. Exit codes: 0 completed/suspended/ok,
1 failed thread or failed verification, 2 usage errors and bad input (nothing stored changed).
Each group of commands lives in its own module and registers itself through `COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence

from durable_graph.backends.local.db import is_corruption
from durable_graph.cli.logs import configure as configure_logs
from durable_graph.cli.output import Exit, fail_usage
from durable_graph.errors import DurableGraphError, StoreUnreadable, UserError

COMMAND_MODULES = [
    "durable_graph.cli.run_commands",
    "durable_graph.cli.read_commands",
    "durable_graph.cli.serve_commands",
    "durable_graph.cli.audit_commands",
]


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
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
        from durable_graph.backends.local import home

        print(f"error: {StoreUnreadable(str(home() / 'state.db'), str(exc))}", file=sys.stderr)
        return 2


def _check_utf8(arguments: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python hands its bytes over as lone surrogates,
    which no store can write, and which would fail far from here)."""
    for position, argument in enumerate(arguments, start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(argument)
            fail_usage(f"argument {position} is not valid UTF-8: {raw!r}")
