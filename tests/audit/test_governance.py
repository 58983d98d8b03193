"""`durable-graph erase` and `POST /threads/{id}/erase`, the same on every store: memory,
SQLite and DynamoDB + S3 (moto).

Given the chat thread (six recorded LLM replies appended to `messages`, a 10 KB attachment kept
as an offloaded chunk), erasing `messages` and `attachment` keeps the chain verifying, lists
what was erased, shows "erased at step N by X" where the values were, and leaves none of their
bytes in an exported bundle.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from durable_graph.bundle import load_bundle, verify_bundle
from durable_graph.loader import load_graph
from tests.audit.conftest import THREAD, Store, run_chat
from tests.audit.test_audit_api import AuditClient

LLM_TEXT = "lorem ipsum dolor sit amet"  # what every recorded reply holds


def test_erase_then_verify_show_diff_replay_and_export(chat: Store, tmp_path: Path) -> None:
    erased = chat.json(
        "erase", THREAD, "--fields", "messages,attachment", "--reason", "GDPR #7", "--actor",
        "alice",
    )  # fmt: skip
    assert erased["steps"]["0"] == ["attachment", "messages"]
    assert erased["steps"]["3"] == ["messages"] and erased["io"]["3"] == [0]
    assert erased["actor"] == {"kind": "cli", "id": "alice"} and erased["signature"]

    report = chat.json("verify", THREAD)
    assert report["ok"] is True and report["signed_steps"] == [6, 8]
    assert report["erased"]["3"] == ["messages"]
    assert report["erasures"][0]["reason"] == "GDPR #7"
    text = chat.run("verify", THREAD)
    assert text.code == 0 and "erased at step 3: messages" in text.out

    shown = chat.run("show", THREAD, "--step", "3")
    assert "attachment: erased at step 0 by cli:alice" in shown.out
    assert chat.json("status", THREAD)["values"]["turns"] == 6  # not erased
    assert "erased at step 3 by cli:alice" in chat.run("diff", THREAD, "2", "3").out

    replayed = chat.run("replay", THREAD, "--step", "3")
    assert replayed.code == 1 and "cannot be reproduced" in replayed.out

    out = tmp_path / "bundle.json"
    assert chat.run("export", THREAD, "--out", str(out)).code == 0
    assert chat.run("verify", "--bundle", str(out)).code == 0
    assert verify_bundle(load_bundle(out)).erased[1] == ["messages"]
    raw = out.read_bytes()
    assert LLM_TEXT.encode() not in raw and b"A" * 100 not in raw

    again = chat.run("erase", THREAD, "--fields", "messages", "--reason", "again")
    assert again.code == 0 and "nothing left to erase" in again.out


def test_bad_erase_requests_exit_2_and_change_nothing(chat: Store) -> None:
    before = chat.json("verify", THREAD)
    unknown = chat.run("erase", THREAD, "--fields", "mesages", "--reason", "GDPR")
    assert unknown.code == 2 and "no field 'mesages'" in unknown.err
    assert chat.run("erase", THREAD, "--fields", "messages").code == 2  # no --reason
    assert chat.run("erase", "nope", "--reason", "GDPR").code == 2
    part = chat.run("erase", THREAD, "--parts", "io,emails", "--reason", "GDPR")
    assert part.code == 2 and "no part 'emails': the parts are args, interrupts" in part.err
    assert chat.run("erase", THREAD, "--parts", ",", "--reason", "GDPR").code == 2
    assert chat.json("verify", THREAD) == before and "erased" not in before


def test_erase_parts_from_the_cli(chat: Store) -> None:
    """`erase --parts io` erases the recorded LLM replies and nothing of the state; `verify`
    still passes and the erasure record names them."""
    erased = chat.json("erase", THREAD, "--parts", "io", "--reason", "GDPR #9")
    assert erased["steps"] == {} and erased["io"]["3"] == [0] and erased["fields"] == []
    assert chat.json("verify", THREAD)["ok"] is True
    assert chat.json("status", THREAD)["values"]["turns"] == 6


def test_erase_over_http(chat: Store, tmp_path: Path) -> None:
    http = AuditClient(chat, tmp_path / "api-home")
    path = f"/threads/{THREAD}/erase"
    assert http.client.request("POST", path, body="{}").status == 401
    bad: list[tuple[dict[str, Any], int]] = [
        ({"fields": ["nope"], "reason": "GDPR"}, 400),
        ({"fields": ["messages"]}, 400),
        ({"fields": [], "reason": "GDPR"}, 400),
        ({"parts": ["args", "nope"], "reason": "GDPR"}, 400),
        ({"parts": [], "reason": "GDPR"}, 400),
    ]
    for body, status in bad:
        assert http.post(path, body).status == status, body
    assert http.post("/threads/nope/erase", {"reason": "GDPR"}).status == 404
    assert http.get(f"/threads/{THREAD}/verify").json()["erased"] == {}

    done = http.post(path, {"fields": ["messages"], "reason": "GDPR #8"})

    assert done.status == 200, done.body
    record = done.json()["record"]
    assert done.json()["erased"] is True and record["actor"]["kind"] == "api"
    verified = http.get(f"/threads/{THREAD}/verify").json()
    assert verified["ok"] is True and verified["erased"]["6"] == ["messages"]
    state = http.get(f"/threads/{THREAD}").json()
    assert all("$erased" in item for item in state["values"]["messages"])


RETAINED_APP = """
from durable_graph.retention_policy import Retention
from tests.ledger.graphs import build

graph = build().compile(
    interrupt_before=["review"], name="{module}:graph", retention=Retention(days=30)
)
"""


def test_retention_run_from_the_cli(store: Store, tmp_path: Path) -> None:
    """Given a completed chat whose graph keeps values 30 days
    When `retention run` runs now, then as of 31 days later
    Then the first erases nothing, the second erases every step under a tombstone by
    system:retention, verify passes, and a bad --as-of exits 2."""
    module = f"{store.app_module}_retained"
    (tmp_path / f"{module}.py").write_text(RETAINED_APP.replace("{module}", module))
    run_chat(load_graph(f"{module}:graph").with_backend(store.backend))
    now = store.json("retention", "run")
    assert now["erased"] == [] and now["finished"] is True
    assert now["totals"] == {"checked": 1, "erased": 0, "unchanged": 1, "skipped": 0, "failed": 0}

    later = (datetime.now(UTC) + timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = store.json("retention", "run", "--as-of", later)

    assert [r["thread_id"] for r in done["erased"]] == [THREAD]
    tombstone = done["erased"][0]
    assert tombstone["actor"] == {"kind": "system", "id": "retention"}
    assert sorted(tombstone["steps"], key=int) == [str(s) for s in range(9)]
    assert store.json("verify", THREAD)["ok"] is True
    bad = store.run("retention", "run", "--as-of", "next tuesday")
    assert bad.code == 2 and "--as-of" in bad.err
