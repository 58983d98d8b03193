"""The AWS runtime across real processes, against one moto server (`tests/aws/moto_server.py`)
that serves one request at a time — so concurrency is real (separate OS processes, interleaving
freely between requests) while each AWS request is atomic, as on AWS.

- The seed exercise: start → draft_email → suspended at human_review (queue empty, SNS message
  published) → ANOTHER PROCESS approves → the worker runs send_email → completed, and `verify`
  passes on the DynamoDB/S3 records.
- Two approvers in two processes released at the same moment: exactly one decision lands.
- Three worker processes draining a fan-out of five documents: the fan-in commits once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durable_graph.backends.aws.factory import AwsClients, AwsRuntime, runtime
from durable_graph.backends.aws.local_poller import EventSourcePoller
from durable_graph.verification import verify_thread
from examples.document_pipeline import sample_bundle
from functions.worker.handler import handler
from tests.aws.conftest import reset_runtime
from tests.aws.resources import REGION, Resources, clients, create_resources, published

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Deployment:
    """Resources on the server, the functions' environment, and helpers to act on them."""

    def __init__(self, endpoint: str, resources: Resources, aws: AwsClients, tmp: Path) -> None:
        self.endpoint = endpoint
        self.resources = resources
        self.aws = aws
        self.env = {
            **resources.env(),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }

    @property
    def rt(self) -> AwsRuntime:
        return runtime()

    def spawn(self, module: str, *args: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_GRAPH_")}
        env.update(self.env)
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def drain(self) -> None:
        EventSourcePoller(self.aws.sqs, self.resources.settings.queue_url, handler).drain()


Deploy = Callable[[str], Deployment]


@pytest.fixture
def deploy(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deploy]:
    def make(graph: str) -> Deployment:
        aws = clients(endpoint)
        deployment = Deployment(endpoint, create_resources(aws, graph=graph), aws, tmp_path)
        for key, value in deployment.env.items():
            monkeypatch.setenv(key, value)
        reset_runtime()
        return deployment

    yield make
    reset_runtime()


def last_json(text: str) -> dict[str, object]:
    line = [row for row in text.splitlines() if row.startswith("{")][-1]
    loaded: dict[str, object] = json.loads(line)
    return loaded


def test_seed_exercise_with_the_approval_in_another_process(deploy: Deploy) -> None:
    """Given the email graph deployed on the server, when a thread starts and the worker
    drains the queue, then it suspends at human_review with nothing queued and one approval
    notification; when another process approves, then the worker sends the email once, the
    thread completes and its DynamoDB/S3 records verify, head signature included."""
    d = deploy("examples.email_approval:graph")
    d.rt.graph.start({"user_prompt": "pay the supplier"}, thread_id="tx-99812")
    d.drain()
    head = d.rt.backend.checkpoints.head_checkpoint("tx-99812")
    assert head is not None and (head.step, head.status) == (1, "suspended")
    assert d.rt.backend.queue.depth() == 0
    [note] = published(d.aws, d.resources)
    assert (note["kind"], note["thread_id"]) == ("suspended", "tx-99812")
    assert note["node"] == "human_review"

    approver = d.spawn(
        "tests.aws.resume_thread",
        "tx-99812",
        "--values",
        '{"approved": true}',
        "--as-node",
        "human_review",
    )
    out, err = approver.communicate(timeout=60)
    assert approver.returncode == 0, err
    assert last_json(out) == {"ok": True, "step": 2, "actor": "approver"}
    assert d.rt.backend.checkpoints.head_checkpoint("tx-99812").status == "running"  # type: ignore[union-attr]

    d.drain()
    final = d.rt.graph.get_state("tx-99812")
    assert final.status == "completed" and final.values["outcome"] == "sent"
    assert [c.source for c in d.rt.graph.get_state_history("tx-99812")] == [
        "node",
        "update",
        "node",
        "input",
    ]
    assert d.aws.ses is not None and d.aws.ses.get_send_quota()["SentLast24Hours"] == 1
    report = verify_thread(d.rt.backend, "tx-99812")
    assert report.ok and report.checked == 4
    assert 3 in report.signed_steps  # the completed head, signed with the KMS ledger key


def test_two_approvers_racing_in_two_processes_one_wins(deploy: Deploy, tmp_path: Path) -> None:
    """Given a suspended thread seen at step 1 by two approvers in two processes, when both
    are released at once, then exactly one decision is committed, the other is told it is
    stale, and the email goes out once with the winner's decision."""
    d = deploy("examples.email_approval:graph")
    d.rt.graph.start({"user_prompt": "pay"}, thread_id="race-1")
    d.drain()
    barrier = tmp_path / "go"
    approvers = [
        d.spawn(
            "tests.aws.resume_thread",
            "race-1",
            "--values",
            json.dumps({"approved": ok}),
            "--as-node",
            "human_review",
            "--expected-step",
            "1",
            "--barrier",
            str(barrier),
            "--actor",
            name,
        )
        for name, ok in (("alice", True), ("bob", False))
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{name}.ready").exists() for name in ("alice", "bob")):
        assert time.monotonic() < deadline, "approvers did not start"
        time.sleep(0.02)
    barrier.touch()  # both have built their clients and read the thread: release them at once
    results = []
    for process in approvers:
        out, err = process.communicate(timeout=60)
        assert process.returncode in (0, 3), err
        results.append(last_json(out))
    winners = [r for r in results if r["ok"]]
    losers = [r for r in results if not r["ok"]]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["error"] in ("stale_head", "not_suspended")

    d.drain()
    final = d.rt.graph.get_state("race-1")
    decided = final.values["approved"]
    assert (winners[0]["actor"], decided) in (("alice", True), ("bob", False))
    assert final.values["outcome"] == ("sent" if decided else "rejected")
    chain = d.rt.backend.checkpoints.list_checkpoints("race-1", newest_first=False)
    assert [c.step for c in chain] == [0, 1, 2, 3]


def test_three_worker_processes_drain_a_fan_out_and_fan_in_once(deploy: Deploy) -> None:
    """Given a document run fanned out into five tasks, when three worker processes drain the
    queue at once, then every document was classified, the fan-in step was committed exactly
    once, and the chain verifies."""
    d = deploy("examples.document_pipeline:graph")
    ref = d.rt.backend.payloads.put(sample_bundle(), "application/json")
    d.rt.graph.start({"upload": ref.model_dump(mode="json")}, thread_id="docs-1")
    workers = [d.spawn("tests.aws.worker_process", "docs-1", "--seconds", "60") for _ in range(3)]
    records = 0
    for process in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        records += int(str(last_json(out)["records"]))
    chain = d.rt.backend.checkpoints.list_checkpoints("docs-1", newest_first=False)
    assert [c.nodes for c in chain] == [[], ["extract"], ["classify"], ["aggregate"]]
    assert chain[-1].status == "completed"
    assert chain[-1].values["totals"] == {"complaint": 1, "contract": 1, "invoice": 2, "other": 1}
    assert records >= 7  # extract, five classify tasks, aggregate (plus any redeliveries)
    assert verify_thread(d.rt.backend, "docs-1").ok
