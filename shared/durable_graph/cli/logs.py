"""Log output of the CLI: readable lines for people, one JSON object per line for machines.

The engine logs with stdlib `logging` and puts `thread_id`, `step`, `node` and `status` in
`extra`; these formatters keep them, so `durable-graph -v --log-json worker` gives the same
structured fields the Lambda functions get from powertools' Logger.
"""

from __future__ import annotations

import json
import logging
import sys

CONTEXT_FIELDS = ("thread_id", "step", "node", "nodes", "status", "attempt")


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        context = " ".join(f"{k}={v}" for k, v in _context(record).items())
        line = f"{line} [{context}]" if context else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(*, verbose: bool, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
