"""Workers killed with SIGKILL in the middle of a 2,000-task fan-out.

The same thread runs twice, each on a fresh embedded store: once fault-free (one worker), once
with two workers at a time, three worker processes being killed one after another while the
fan-out is between 20% and 60% done and a replacement started after each kill. The crashed
run must end exactly like the fault-free one, verify, and have performed each task's side effect
once.

What `ctx.step` can promise under SIGKILL: it claims the effect (a conditional write), runs
`fn`, then records the result. A process killed after `fn` ran but before the record landed
leaves a claim behind; the task's next delivery (after the killed worker's lease ran out) takes
it over at once and runs `fn` again. No engine can close that window for an external side
effect (the file append and the database write are not one transaction). So the test asserts
what is guaranteed: every side effect happened, every effect that was not in flight in a killed
process happened exactly once, and an effect that happened twice was first performed by a killed
process, at most once more, and at most `CONCURRENCY` of them per kill (a worker runs that many
tasks at once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, Cli, kill

pytestmark = pytest.mark.slow

GRAPH = "tests.e2e.fanout_graphs:fanout_graph"
THREAD = "fanout"
N = 2000
DOCS = [f"doc-{i:04d}" for i in range(N)]
CONCURRENCY = 4  # tasks one worker process runs at once (the CLI default, passed explicitly)
LEASE = "3"  # seconds before a killed worker's leased task / effect claim is taken over
EFFECT_SECONDS = "0.01"  # each effect takes 10 ms, so kills land inside effects (both sides)
KILL_AT = (0.25, 0.40, 0.52)  # fractions of the side effects done when each kill happens
TIMEOUT = 150.0


@dataclass
class Store:
    """One embedded store (its own DURABLE_GRAPH_HOME) and its side-effect file."""

    cli: Cli
    effects: Path
    logs: Path
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    def start_thread(self) -> None:
        started = self.cli.json("run", GRAPH, "--thread", THREAD, "--input", _input(), "--detach")
        assert started["status"] == "running" and started["step"] == 0

    def spawn_worker(self) -> subprocess.Popen[str]:
        index = len(self.workers)
        args = [
            "worker",
            "--until-idle",
            "--json",
            "--visibility-timeout",
            LEASE,
            "--concurrency",
            str(CONCURRENCY),
        ]
        with (
            (self.logs / f"worker-{index}.out").open("w") as out,
            (self.logs / f"worker-{index}.err").open("w") as err,
        ):
            proc = subprocess.Popen(
                self.cli.command(*args),
                cwd=REPO,
                env=self.cli.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        self.workers.append(proc)
        return proc

    def lines(self) -> list[tuple[str, int]]:
        """(document, pid) per side effect performed, in the order they happened."""
        if not self.effects.exists():
            return []
        out = []
        for line in self.effects.read_text().splitlines():
            doc, pid = line.split()
            out.append((doc, int(pid)))
        return out

    def wait_idle(self, procs: list[subprocess.Popen[str]], deadline: float) -> None:
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {proc.pid} still running after {TIMEOUT}s: {self.tail()}")
            assert proc.returncode == 0, (proc.returncode, self.tail())

    def tail(self) -> str:
        status = self.cli.run("status", THREAD, "--json")
        done = len(self.lines())
        errors = {p.name: p.read_text()[-2000:] for p in sorted(self.logs.glob("*.err"))}
        return f"{done} effects; status {status.stdout[:300]}; stderr {errors}"

    def final(self) -> dict[str, Any]:
        status = self.cli.json("status", THREAD)
        assert status["status"] == "completed", self.tail()
        assert self.cli.json("verify", THREAD)["ok"] is True
        history = self.cli.json("history", THREAD)
        ran = sorted((h["step"], h["nodes"]) for h in history)
        assert ran == [(0, []), (1, ["split"]), (2, ["work"]), (3, ["collect"])], ran
        values: dict[str, Any] = status["values"]
        return values

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _input() -> str:
    return json.dumps({"documents": DOCS})


def _store(tmp_path: Path, name: str) -> Store:
    root = tmp_path / name
    logs = root / "logs"
    logs.mkdir(parents=True)
    effects = root / "effects.txt"
    env = {
        **os.environ,
        "DURABLE_GRAPH_HOME": str(root / "home"),
        "DG_FANOUT_EFFECTS": str(effects),
        # The engine's task lease (and so its effect claims' lease) = the workers' lease.
        "DURABLE_GRAPH_LEASE_SECONDS": LEASE,
        "DG_FANOUT_EFFECT_SECONDS": EFFECT_SECONDS,
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
    }
    return Store(cli=Cli(home=root / "home", env=env), effects=effects, logs=logs)


def test_workers_killed_mid_fanout_end_like_the_fault_free_run(tmp_path: Path) -> None:
    """Given a thread fanning out to 2,000 tasks that each append one line through `ctx.step`,
    when worker processes are SIGKILLed while the fan-out is 25%, 40% and 52% done and
    replacements finish the thread, then its results, summary and history equal the
    fault-free run's, verify passes, every document's effect happened, and only effects in
    flight in a killed worker happened (at most) twice."""
    clean = _store(tmp_path, "clean")
    crash = _store(tmp_path, "crash")
    try:
        # ---- fault-free: start without running, drain with one worker
        began = time.monotonic()
        clean.start_thread()
        clean.wait_idle([clean.spawn_worker()], time.monotonic() + TIMEOUT)
        expected = clean.final()
        clean_seconds = time.monotonic() - began
        assert sorted(doc for doc, _ in clean.lines()) == DOCS  # each effect exactly once
        assert expected["summary"]["count"] == N and expected["summary"]["distinct"] == N

        # ---- crash: two workers, kill three processes one after another mid fan-out
        began = time.monotonic()
        deadline = began + TIMEOUT
        crash.start_thread()
        live = [crash.spawn_worker(), crash.spawn_worker()]
        killed: dict[int, int] = {}  # pid -> effects done when it was killed
        for fraction in KILL_AT:
            victim = live[0]  # the oldest live worker, which has been working for a while
            while True:
                done = crash.lines()
                if len(done) >= fraction * N and any(pid == victim.pid for _, pid in done):
                    break
                assert victim.poll() is None, f"worker exited early: {crash.tail()}"
                assert time.monotonic() < deadline, f"fan-out stalled: {crash.tail()}"
                time.sleep(0.01)
            kill(victim)
            killed[victim.pid] = len(crash.lines())
            live.remove(victim)
            live.append(crash.spawn_worker())
        assert all(0.2 * N <= at <= 0.6 * N for at in killed.values()), killed
        crash.wait_idle(live, deadline)
        crashed = crash.final()
        crash_seconds = time.monotonic() - began
    finally:
        clean.stop_all()
        crash.stop_all()

    # Same outcome as the fault-free run. The fan-in merges in task order, not completion
    # order, so the lists are equal as they are, not only as multisets.
    assert crashed["results"] == expected["results"]
    assert crashed["summary"] == expected["summary"]
    assert crashed == expected

    # Every side effect happened; none twice unless a killed process was in the middle of it.
    by_doc: dict[str, list[int]] = defaultdict(list)
    for doc, pid in crash.lines():
        by_doc[doc].append(pid)
    assert sorted(by_doc) == DOCS
    twice = {doc: pids for doc, pids in by_doc.items() if len(pids) > 1}
    for doc, pids in twice.items():
        assert len(pids) == 2, (doc, pids)  # one re-run after the claim's lease expired
        assert pids[0] in killed and pids[1] != pids[0], (doc, pids, killed)
    per_kill: dict[int, int] = defaultdict(int)
    for pids in twice.values():
        per_kill[pids[0]] += 1
    assert all(n <= CONCURRENCY for n in per_kill.values()), per_kill
    print(
        f"\nfan-out {N}: fault-free {clean_seconds:.1f}s, crashed {crash_seconds:.1f}s, "
        f"kills at {sorted(killed.values())} effects, effects re-run after a kill: "
        f"{len(twice)} {sorted(twice)}",
        file=sys.stderr,
    )
