"""Output helpers shared by every command: JSON for programs, tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from durable_graph.errors import InvalidInput


class Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail_usage(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise Exit(2)


def emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def parse_json_arg(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{flag} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field=flag,
        ) from None


def parse_json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    value = parse_json_arg(text, flag)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"{flag} must be a JSON object, got {type(value).__name__}", field=flag)
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)
