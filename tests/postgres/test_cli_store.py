"""`--store postgresql://...` for every command, `durable-graph db upgrade`, and the seed's
exercise (examples/demo.py) run end to end against a PostgreSQL store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from durable_graph.backends.postgres.migrations import LATEST
from durable_graph.store_uri import parse_store_uri
from tests.e2e.test_demo import assert_the_demo_runs
from tests.e2e.test_webhook_example import started_by_webhook
from tests.postgres.cli import PgCli
from tests.postgres.server import PostgresServer


def test_db_upgrade_migrates_once_and_says_so(cli: PgCli) -> None:
    """Given an empty schema, when `db upgrade` runs twice (the URI after the command, then
    before it), then the first migrates to LATEST and the second finds nothing to do."""
    uri = cli.env.pop("DURABLE_GRAPH_STORE")
    first = cli.json("db", "upgrade", "--store", uri)
    assert first == {"scheme": "postgresql", "before": 0, "after": LATEST}
    again = cli.run("--store", uri, "db", "upgrade")
    assert again.returncode == 0 and f"already at version {LATEST}" in again.stdout
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT count(*) FROM durable_graph_schema").fetchone() == (LATEST,)


def test_db_upgrade_of_the_embedded_store_has_nothing_to_do(cli: PgCli, tmp_path: Path) -> None:
    done = cli.run("db", "upgrade", "--store", f"sqlite://{tmp_path / 'local'}")
    assert done.returncode == 0 and "no schema to migrate" in done.stdout


def test_unknown_uri_options_are_refused_by_name(cli: PgCli) -> None:
    done = cli.run("status", "x", "--store", cli.uri + "&colour=red")
    assert done.returncode == 2 and "colour" in done.stderr and "Traceback" not in done.stderr
    assert parse_store_uri(cli.uri).options["options"].startswith("-csearch_path=")


def test_the_seed_exercise_runs_on_postgres(pg_server: PostgresServer, tmp_path: Path) -> None:
    """Given a fresh database, when examples/demo.py runs with DURABLE_GRAPH_STORE set to it
    (the documented one-liner), then the whole exercise passes: suspend, approve in another
    process, one email sent, a rejected thread, audit, fork, export and verify."""
    with pg_server.connect() as conn:
        conn.execute("CREATE DATABASE demo_exercise")
    assert_the_demo_runs(tmp_path / "demo", pg_server.uri("demo_exercise"))
    with psycopg.connect(pg_server.uri("demo_exercise")) as conn:
        row = conn.execute("SELECT status FROM threads WHERE thread_id = 'tx-99812'").fetchone()
    assert row == ("completed",)  # the state is in the server ...
    assert not (tmp_path / "demo" / "state.db").exists()  # ... not in an embedded store


def test_serve_on_postgres_takes_a_signed_webhook_and_records_the_approval_link(
    cli: PgCli,
) -> None:
    """Given `durable-graph serve` on a PostgreSQL store, when examples/webhook_start.py
    starts a thread with a signed request, then the thread suspends and its notification,
    with the approval link, is an outbox row in the database."""
    with started_by_webhook(cli, "w1") as url:
        deadline = time.monotonic() + 30
        while not (rows := cli.rows("SELECT body FROM notifications WHERE thread_id = 'w1'")):
            assert time.monotonic() < deadline, "no notification row"
            time.sleep(0.1)
        note = json.loads(rows[0][0])
        assert note["links"]["approval"].startswith(url + "/approvals/")
