"""JSON the commands take as arguments (`--input`, `--values`, `--resume-value`), and its limits.

Each limit is checked before the JSON is parsed, so bad bytes are one clear line and exit 2,
never a traceback, and nothing stored changes:

- `@path` reads the JSON from a file and `-` from stdin: Linux caps one argument at 128 KiB.
- At most `MAX_INPUT_BYTES` (16 MiB), refused before more is read.
- At most `MAX_JSON_DEPTH` (200) levels of nesting: Python's parser would raise RecursionError
  on deep input, and the API's parser stops at the same depth.
- Valid UTF-8, and no lone surrogate (`"\\ud800"`): stored state is UTF-8.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, BinaryIO

from durable_graph.errors import InvalidInput, PayloadTooLarge

MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 200

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def parse_json_arg(text: str | None, flag: str) -> Any:
    """The JSON value an argument holds, or the file (`@path`) or stdin (`-`) it names."""
    if text is None:
        return None
    text = _source_text(text, flag)
    _check_depth(text, flag)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{flag} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field=flag,
        ) from None
    _check_unicode(value, flag)
    return value


def parse_json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    value = parse_json_arg(text, flag)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"{flag} must be a JSON object, got {type(value).__name__}", field=flag)
    return value


def _source_text(text: str, flag: str) -> str:
    if text == "-":
        return _read(sys.stdin.buffer, "stdin", flag)
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, "rb") as handle:
                return _read(handle, path, flag)
        except OSError as exc:
            raise InvalidInput(f"{flag} {text}: cannot read: {exc.strerror}", field=flag) from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_INPUT_BYTES:
        raise _too_large(flag, f"{size} bytes")
    return text


def _read(stream: BinaryIO, source: str, flag: str) -> str:
    """At most `MAX_INPUT_BYTES` of `stream`, decoded: a larger one is refused unread."""
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large(flag, source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{flag} ({source}) is not valid UTF-8: byte {exc.start} is {data[exc.start]:#04x}",
            field=flag,
        ) from None


def _too_large(flag: str, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{flag} is too large ({what}): the limit is {MAX_INPUT_BYTES} bytes", field=flag
    )


def _check_depth(text: str, flag: str) -> None:
    """Refuse nesting deeper than `MAX_JSON_DEPTH`, counting brackets outside strings."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{flag} is nested deeper than {MAX_JSON_DEPTH} levels", field=flag)


def _check_unicode(value: Any, flag: str) -> None:
    """Refuse strings UTF-8 cannot hold: a lone surrogate such as `"\\ud800"` parses, but no
    store could write it."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start]
        raise InvalidInput(
            f"{flag} is not valid Unicode: it holds a lone surrogate (\\u{ord(bad):04x})",
            field=flag,
        ) from None
