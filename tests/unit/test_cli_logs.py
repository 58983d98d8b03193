"""Structured CLI logs keep the engine's context fields (thread_id, step, ...)."""

from __future__ import annotations

import json
import logging

from durable_graph.cli.logs import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    entry = logging.LogRecord(
        "durable_graph.engine", logging.INFO, __file__, 1, "step %s", ("x",), None
    )
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_json_lines_carry_thread_and_step() -> None:
    line = json.loads(JsonFormatter().format(record(thread_id="t1", step=3, status="running")))
    assert line["message"] == "step x" and line["level"] == "INFO"
    assert (line["thread_id"], line["step"], line["status"]) == ("t1", 3, "running")
    assert "node" not in line


def test_text_lines_append_the_context() -> None:
    text = TextFormatter().format(record(thread_id="t1", step=3))
    assert text == "info durable_graph.engine: step x [thread_id=t1 step=3]"
