"""The ledger's reading commands on a thread the saver wrote show the values, not ciphertext:
`show`, `status`, `diff` and the explorer decrypt with the thread's key and decode LangGraph's
serializer output without importing anything; what cannot be read says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.api.explorer_read import state_at
from durable_graph.cli import main
from durable_graph.langgraph_saver import DurableGraphSaver
from durable_graph.langgraph_saver.display import decode
from durable_graph.langgraph_saver.manifest import erase
from tests.langgraph_saver.apps import review_app, run_turns


def _cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str]:
    code = main(["--store", f"sqlite:///{home}", *args])
    return code, capsys.readouterr().out


def _first_draft(saver: DurableGraphSaver) -> int:
    """The step of the checkpoint where the first draft was appended to `notes`."""
    rows = saver.backend.checkpoints.ledger("t1")
    return next(r.step for r in rows if "notes" in r.changes and r.changes["notes"].op == "add")


@pytest.fixture
def written(tmp_path: Path) -> DurableGraphSaver:
    saver = DurableGraphSaver.embedded(tmp_path)
    run_turns(review_app(saver), "t1", turns=2)
    return saver


def test_show_and_status_print_the_decoded_values(
    written: DurableGraphSaver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a thread the saver wrote; When `show --json` reads a checkpoint's step
    step = _first_draft(written)
    code, out = _cli(capsys, tmp_path, "show", "t1", "--step", str(step), "--json")

    # Then the channels, the header's metadata and the pending writes are plain values
    values: dict[str, Any] = json.loads(out)["values"]
    assert code == 0
    assert values["notes"][0] == "turn 0" and values["notes"][1].startswith("draft 1: ")
    assert values["drafts"] == 1
    assert values["$checkpoint"]["meta"]["source"] == "loop"
    assert "msgpack:" not in json.dumps(values)  # (the record as stored stays as it is)
    # and the text form and the thread's status read the same
    code, text = _cli(capsys, tmp_path, "show", "t1", "--step", str(step))
    assert code == 0 and "'turn 0'" in text and "msgpack:" not in text
    code, status = _cli(capsys, tmp_path, "status", "t1", "--json")
    assert code == 0 and json.loads(status)["values"]["notes"][-1] == "decision: ok 1"


def test_diff_and_the_explorer_show_the_decoded_values(
    written: DurableGraphSaver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the step where the first draft was appended, and the one before it
    step = _first_draft(written)

    # When they are diffed, and the explorer reads the step
    code, out = _cli(capsys, tmp_path, "diff", "t1", str(step - 1), str(step), "--json")
    _, explorer = state_at(written.backend, "t1", step)

    # Then the diff names the appended draft in the clear, as the explorer shows the state
    changes = {c["field"]: c for c in json.loads(out)["changes"]}
    assert code == 0 and changes["notes"]["change"] == "appended"
    assert changes["notes"]["appended"][0].startswith("draft 1: ")
    assert explorer["notes"][0] == "turn 0"


def test_a_destroyed_key_is_said_so(
    written: DurableGraphSaver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a thread whose key was destroyed (a deletion cut short before its erasure)
    erase(written.backend.checkpoints, "t1", "2026-11-30T00:00:00Z")

    # When a checkpoint is shown
    step = _first_draft(written)
    code, out = _cli(capsys, tmp_path, "show", "t1", "--step", str(step), "--json")

    # Then each sealed value says why it cannot be read
    notes = json.loads(out)["values"]["notes"]
    assert code == 0
    assert notes[0]["note"].startswith("not readable: its data key was destroyed at 2026-11-30")


def test_objects_are_decoded_as_their_type_and_arguments_never_imported() -> None:
    # Given a LangChain message as LangGraph's serializer writes it
    typed = JsonPlusSerializer().dumps_typed(HumanMessage("hello", id="m1"))

    # When it is decoded for display
    shown = decode(*typed)

    # Then it is its class name and its fields
    assert shown["$type"] == "langchain_core.messages.human.HumanMessage"
    assert shown["value"]["content"] == "hello" and shown["value"]["id"] == "m1"
    assert decode("pickle", b"\x80")["note"] == "a pickled value: reading never unpickles"
