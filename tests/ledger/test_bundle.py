"""Audit bundles: exported from the store, verified offline by another process."""

from __future__ import annotations

import json
from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.runtime import CompiledGraph
from durable_graph.timetravel import fork
from tests.ledger.conftest import THREAD, Cli


def exported(cli: Cli, tmp_path: Path, thread_id: str = THREAD) -> Path:
    out = tmp_path / "audit" / f"{thread_id}.json"
    doc = cli.json("export", thread_id, "--out", str(out))
    assert doc["records"] > 0 and out.stat().st_size == doc["bytes"]
    return out


def test_bundle_verifies_on_a_machine_without_the_store(
    chat: CompiledGraph, cli: Cli, tmp_path: Path
) -> None:
    """Given an exported bundle, when verified with DURABLE_GRAPH_HOME pointing nowhere, then it
    passes every check including signatures, and no store is created."""
    out = exported(cli, tmp_path)
    bundle = json.loads(out.read_text())
    assert len(bundle["records"]) == 9 and len(bundle["payloads"]) == 1
    assert [s["step"] for s in bundle["signatures"]] == [6, 8] and bundle["public_keys"]
    elsewhere = tmp_path / "no-store-here"
    report = cli.json("verify", "--bundle", str(out), home=elsewhere)
    assert report["ok"] is True and report["signed_steps"] == [6, 8]
    assert "compare the fingerprint" in report["notes"][0]
    assert not elsewhere.exists()


def test_tampered_bundle_names_the_step(chat: CompiledGraph, cli: Cli, tmp_path: Path) -> None:
    """Given a bundle whose step 2 change or payload bytes were edited, or that smuggles in a
    whole state beside the changes, then verify fails there."""
    out = exported(cli, tmp_path)
    bundle = json.loads(out.read_text())
    bundle["records"][2]["changes"]["turns"]["v"] = 7
    out.write_text(json.dumps(bundle))
    report = cli.json("verify", "--bundle", str(out), expect=1, home=tmp_path / "none")
    assert (report["first_bad_step"], report["check"]) == (2, "state")
    bundle = json.loads(exported(cli, tmp_path).read_text())
    bundle["records"][2]["changes"]["turns"]["d"] = "0" * 64
    out.write_text(json.dumps(bundle))
    report = cli.json("verify", "--bundle", str(out), expect=1, home=tmp_path / "none")
    assert (report["first_bad_step"], report["check"]) == (2, "hash")
    bundle = json.loads(exported(cli, tmp_path).read_text())
    bundle["records"][2]["values"] = {"turns": 7}
    out.write_text(json.dumps(bundle))
    report = cli.json("verify", "--bundle", str(out), expect=1, home=tmp_path / "none")
    assert (report["first_bad_step"], report["check"]) == (2, "parse")
    bundle = json.loads(exported(cli, tmp_path).read_text())
    (digest,) = bundle["payloads"]
    bundle["payloads"][digest] = "QUJD"
    out.write_text(json.dumps(bundle))
    report = cli.json("verify", "--bundle", str(out), expect=1, home=tmp_path / "none")
    assert (report["first_bad_step"], report["check"]) == (0, "payload")


def test_pinned_key_rejects_a_bundle_signed_by_another(
    chat: CompiledGraph, cli: Cli, tmp_path: Path
) -> None:
    """Given the ledger's public key pinned with --trusted-key, then the genuine bundle passes,
    and a bundle from another store (another key) fails `signature`."""
    out = exported(cli, tmp_path)
    pem = tmp_path / "ledger.pub.pem"
    pem.write_text(json.loads(out.read_text())["public_keys"][0]["pem"])
    ok = cli.json("verify", "--bundle", str(out), "--trusted-key", str(pem))
    assert ok["ok"] is True and "notes" not in ok
    other_home = tmp_path / "other"
    other = Cli(other_home)
    other_backend = local_backend(other_home)
    chat.with_backend(other_backend).invoke({}, thread_id="o1")
    other_backend.close()
    foreign = exported(other, tmp_path, "o1")
    bad = cli.json("verify", "--bundle", str(foreign), "--trusted-key", str(pem), expect=1)
    assert (bad["first_bad_step"], bad["check"]) == (6, "signature")


def test_a_fork_bundle_carries_its_origin_record(
    chat: CompiledGraph, cli: Cli, tmp_path: Path
) -> None:
    fork(chat, THREAD, 5, "c1-f")
    bundle = json.loads(exported(cli, tmp_path, "c1-f").read_text())
    assert bundle["origin"]["step"] == 5 and bundle["origin"]["thread_id"] == THREAD
    report = cli.json("verify", "--bundle", str(tmp_path / "audit" / "c1-f.json"))
    assert report["ok"] is True and "origin" in report["checks"]


def test_not_a_bundle_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    done = cli.run("verify", "--bundle", str(junk))
    assert done.returncode == 2 and "not an audit bundle" in done.stderr
