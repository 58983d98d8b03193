"""`durable-graph replay` of steps routed by a node's `Command(goto=...)`, here a fan-out of
`Send`s: each step reproduces (exit 0), in a process of its own."""

from __future__ import annotations

from tests.e2e.conftest import Cli

COMMAND = "tests.graphs:command_graph"


def test_replay_reproduces_every_step_of_a_command_routed_thread(cli: Cli) -> None:
    doc = cli.json("run", COMMAND, "--thread", "cg", "--input", '{"items": ["a", "b"]}')
    assert doc["status"] == "completed"
    assert sorted(doc["values"]["done"]) == ["dispatch", "handled a", "handled b"]
    for step in range(1, int(doc["step"]) + 1):
        report = cli.json("replay", "cg", "--step", str(step))
        assert report["verdict"] == "reproduced", report
        assert report["routing_matches"] is True
