"""`durable-graph` (also `python -m durable_graph`): the command line.

Names, flags and JSON shapes are a public contract. Exit codes: 0 completed/suspended/ok,
1 failed thread or failed verification, 2 usage errors and bad input (nothing stored changed).
Each group of commands lives in its own module and registers itself through `COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from durable_graph.cli.logs import configure as configure_logs
from durable_graph.cli.output import Exit, fail_usage
from durable_graph.errors import DurableGraphError, UserError

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
    try:
        args = parser.parse_args(argv)
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
