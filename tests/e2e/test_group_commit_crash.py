"""SIGKILL in the middle of a group commit (`durable-graph worker --concurrency N`, on the
embedded store and on a real PostgreSQL server): the batch's steps are one transaction, so a
kill before its COMMIT loses no step committed before it and commits none of the batch; the
effects its tasks already ran and recorded are replayed from their records when the tasks run
again, never performed twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.backends.packed_bodies import unpack
from durable_graph.verification import verify_thread
from tests.e2e.conftest import Cli, kill, wait_while_running
from tests.e2e.effect_graphs import order_graph
from tests.postgres.cli import pg_cli
from tests.postgres.server import fresh_schema_uri

THREADS = 12
LEASE = 2.0


@pytest.fixture(params=["sqlite", "postgres"])
def store_cli(request: pytest.FixtureRequest, cli: Cli, tmp_path: Path) -> Iterator[Cli]:
    """The CLI on the embedded store, or on a fresh store on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield cli
        return
    with fresh_schema_uri() as uri:
        yield pg_cli(tmp_path, uri)


def _done_effects(cli: Cli) -> int:
    rows = cli.rows("SELECT body FROM records WHERE key LIKE 'fx#%'")
    # PostgreSQL keeps record bodies as bytea (`packed_bodies.py`), SQLite as text.
    return sum('"status":"done"' in unpack(body) for (body,) in rows)


def test_a_worker_killed_before_its_batch_commits_loses_nothing_and_repeats_no_effect(
    store_cli: Cli, tmp_path: Path
) -> None:
    """Given 12 threads whose first step a group-committing worker committed, and whose
    second step's tasks all performed and recorded their effect, when the worker is
    SIGKILLed before that batch commits, then every thread still has its first step and none
    its second; another worker completes them all, each effect was received once, and every
    chain verifies."""
    cli = store_cli
    folder = tmp_path / "effect"
    folder.mkdir()
    cli.env["DG_EFFECT_DIR"] = str(folder)
    backend = cli.backend()
    app = order_graph.with_backend(backend)
    ids = [f"o-{i}" for i in range(THREADS)]
    with backend.atomic():
        for tid in ids:
            app.start({}, thread_id=tid)
    backend.close()

    proc = cli.spawn(
        "worker", "--concurrency", str(THREADS), "--visibility-timeout", str(LEASE),
        extra_env={"DG_AFTER_EFFECT_SLEEP": "60"},
    )  # fmt: skip
    wait_while_running(
        proc,
        lambda: _done_effects(cli) >= THREADS,
        "the effects never all ran",
        timeout=60,
        poll=0.05,
    )
    kill(proc)

    heads = cli.rows("SELECT thread_id, MAX(step) FROM checkpoints GROUP BY thread_id")
    assert sorted(heads) == sorted((tid, 1) for tid in ids)  # step 1 kept, no step 2

    done = cli.run(
        "worker", "--until-idle", "--json", "--concurrency", str(THREADS),
        "--visibility-timeout", str(LEASE),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    received = (folder / "received").read_text().split("\n")[:-1]
    keys = [line.split()[0] for line in received]
    assert len(keys) == THREADS and len(set(keys)) == THREADS, received
    backend = cli.backend()
    for tid in ids:
        head = backend.checkpoints.head_checkpoint(tid)
        assert head is not None and head.status == "completed", head
        assert head.values["receipt"].startswith("charged:")
        assert verify_thread(backend, tid).ok
    backend.close()
