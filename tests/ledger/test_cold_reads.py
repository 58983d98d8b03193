"""Cold reads of a long thread (`docs/record-format.md` §7): what a fresh reader fetches to
rebuild the head, counted on the real SQLite and folder stores; `get_state_history(limit=k)`
reads O(k) rows plus one fold; segments written by earlier releases (zlib) still read."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends import segment_payloads
from durable_graph.backends.local import local_backend
from durable_graph.backends.snapshots import SNAPSHOT_EVERY
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.ports.payload_store import StoredObject
from durable_graph.verification import verify_thread
from tests.ledger.graphs import graph as chat_graph

NO_LIMIT = {"recursion_limit": 1_000_000}


class CountingPayloads:
    """The real payload store, counting payload objects read and the requests reading them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.objects = 0
        self.requests = 0

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        ref: PayloadRef = self.inner.put(data, content_type)
        return ref

    def get(self, ref: PayloadRef) -> bytes:
        self.objects += 1
        self.requests += 1
        data: bytes = self.inner.get(ref)
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        self.objects += len(refs)
        self.requests += 1
        found: list[bytes] = self.inner.get_many(refs)
        return found

    def delete(self, ref: PayloadRef) -> bool:
        return bool(self.inner.delete(ref))

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return list(self.inner.list_objects(after, limit))

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return list(self.inner.delete_idle(digests, since, dry_run=dry_run))


class Counted:
    """A fresh reader of `home` (nothing cached) whose checkpoint rows and payloads are
    counted: the real stores, wrapped."""

    def __init__(self, home: Path) -> None:
        self.backend = local_backend(home)
        records = self.backend.checkpoints
        self.payloads = CountingPayloads(records.payloads)
        records.payloads = self.payloads
        self.rows = 0
        inner = records.inner
        for name in ("head_checkpoint", "get_checkpoint", "list_checkpoints"):
            setattr(inner, name, self._counting(getattr(inner, name)))

    def _counting(self, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            found = method(*args, **kwargs)
            self.rows += len(found) if isinstance(found, list) else int(found is not None)
            return found

        return wrapper

    def close(self) -> None:
        self.backend.close()


def chat(home: Path, turns: int) -> Backend:
    backend = local_backend(home, clock=ManualClock())
    chat_graph.with_backend(backend, clock=ManualClock()).invoke(
        {"limit": turns}, NO_LIMIT, thread_id="c"
    )
    return backend


@pytest.fixture(scope="module")
def chats(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Checkpoint]]:
    """Two chats, 200 and 500 turns (each turn appends a message), and their warm heads."""
    out = {}
    for turns in (200, 500):
        home = tmp_path_factory.mktemp(f"chat{turns}")
        backend = chat(home, turns)
        head = backend.checkpoints.head_checkpoint("c")
        assert head is not None
        out[turns] = (home, head)
        backend.close()
    return out


def test_a_cold_head_read_makes_the_same_few_requests_however_long_the_thread(
    chats: dict[int, tuple[Path, Checkpoint]],
) -> None:
    """Given chats of 200 and 500 turns, then a cold read of the head reads at most
    SNAPSHOT_EVERY + 1 rows and three payload requests (the snapshot, its pages, its segments)
    at either length, and equals the warm head; the payload objects it reads still grow, one
    segment per SNAPSHOT_EVERY steps (`docs/record-format.md` §12)."""
    seen = {}
    for turns, (home, warm) in chats.items():
        reader = Counted(home)
        head = reader.backend.checkpoints.head_checkpoint("c")
        assert head == warm and len(head.values["messages"]) == turns
        assert reader.rows <= SNAPSHOT_EVERY + 1
        assert reader.payloads.requests <= 3
        seen[turns] = reader.payloads.objects
        reader.close()
    # one snapshot, then one segment per snapshot interval of the list's growth
    assert seen[200] == 1 + 200 // SNAPSHOT_EVERY
    assert seen[500] == 1 + 500 // SNAPSHOT_EVERY


def test_a_cold_history_page_reads_its_rows_and_one_fold(
    chats: dict[int, tuple[Path, Checkpoint]],
) -> None:
    """Given a 500-turn chat, then a cold `get_state_history(limit=k)` for k = 5, 25, 60 reads
    the k rows plus the rows of one fold window (at most SNAPSHOT_EVERY), and the payloads of
    one snapshot (at most what a cold head read fetches, in as many requests); every page
    equals the states the head read gives."""
    home, warm = chats[500]
    head_objects = 1 + 500 // SNAPSHOT_EVERY  # one snapshot and its segments
    for limit in (5, 25, 60):
        reader = Counted(home)
        app = chat_graph.with_backend(reader.backend)
        page = app.get_state_history("c", limit=limit)
        rows, objects, requests = reader.rows, reader.payloads.objects, reader.payloads.requests
        assert [s.step for s in page] == list(range(warm.step, warm.step - limit, -1))
        assert limit <= rows <= limit + SNAPSHOT_EVERY
        assert objects <= head_objects and requests <= 3
        assert page[0].json_values == warm.values
        messages = warm.values["messages"]
        assert all(
            s.json_values["messages"] == messages[: len(s.json_values["messages"])]
            and len(s.json_values["messages"]) == len(messages) - i
            for i, s in enumerate(page)
        )
        reader.close()


def old_pack(value: Any, *, zstd: bool = True) -> bytes:
    """How releases before zstd segments wrote snapshots, pages and segments: zlib, level 6."""
    return zlib.compress(compact_json(value).encode(), 6)


def test_segments_written_as_zlib_by_an_earlier_release_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a 200-turn chat whose snapshots and segments were written as zlib (the earlier
    release's writer), when this release reads it cold and continues it, then it reads the
    same state, writes its new segments as zstd beside the old ones, and the chain verifies."""
    home = tmp_path / "home"
    with monkeypatch.context() as old:
        old.setattr(segment_payloads, "pack", old_pack)
        chat(home, 200).close()
    segments = sorted((home / "payloads").rglob("*"))
    blobs = [p.read_bytes() for p in segments if p.is_file()]
    assert blobs and not any(b.startswith(b"\x28\xb5\x2f\xfd") for b in blobs)
    backend = local_backend(home, clock=ManualClock())
    head = backend.checkpoints.head_checkpoint("c")
    assert head is not None and len(head.values["messages"]) == 200
    assert head.values["messages"][-1].startswith("turn 199: ")
    # it waits for review: let it finish, then give it a next turn that appends 140 more
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke(None, NO_LIMIT, thread_id="c")
    app.invoke({"limit": 340}, NO_LIMIT, thread_id="c")
    warm = backend.checkpoints.head_checkpoint("c")
    backend.close()
    blobs = [p.read_bytes() for p in (home / "payloads").rglob("*") if p.is_file()]
    assert any(b.startswith(b"\x28\xb5\x2f\xfd") for b in blobs)  # new segments: zstd
    fresh = local_backend(home)
    head = fresh.checkpoints.head_checkpoint("c")
    assert head is not None and head == warm and len(head.values["messages"]) == 340
    assert verify_thread(fresh, "c").ok
    fresh.close()


def test_the_head_snapshot_reads_its_state_on_first_use_as_plain_values(
    chats: dict[int, tuple[Path, Checkpoint]],
) -> None:
    """Given a 500-turn chat, when a fresh reader calls `get_state`, then `next`, `config`,
    `metadata`, `tasks` and `created_at` come from the head row alone (one row, no payload);
    the first use of `values` reads the state once, as a plain dict of plain lists; and the
    snapshot equals, pickles, copies and `dataclasses.replace`s like the eager snapshot of the
    same step from `get_state_history`."""
    home, warm = chats[500]
    reader = Counted(home)
    app = chat_graph.with_backend(reader.backend)
    snapshot = app.get_state("c")
    assert snapshot.next == ("review",) and snapshot.status == "suspended"
    assert snapshot.config["configurable"]["checkpoint_id"].startswith(f"{warm.step:08d}-")
    assert snapshot.metadata["hash"] == warm.hash and snapshot.created_at == warm.created_at
    assert [t.name for t in snapshot.tasks] == ["review"]
    assert (reader.rows, reader.payloads.objects) == (1, 0)
    values = snapshot.values
    assert type(values) is dict and type(values["messages"]) is list
    assert len(values["messages"]) == 500 and snapshot.json_values == warm.values
    assert snapshot.checkpoint == warm
    reads = (reader.rows, reader.payloads.objects)
    assert snapshot.values is values and (reader.rows, reader.payloads.objects) == reads
    eager = app.get_state_history("c", limit=1)[0]
    assert snapshot == eager
    fresh = app.get_state("c")
    assert fresh == eager  # equality reads the state first
    unread = app.get_state("c")
    assert pickle.loads(pickle.dumps(unread)) == eager
    assert copy.deepcopy(app.get_state("c")) == eager
    moved = dataclasses.replace(app.get_state("c"), next=("elsewhere",))
    assert moved.next == ("elsewhere",) and moved.values == eager.values
    assert "messages" in repr(app.get_state("c"))
    assert dataclasses.asdict(app.get_state("c")) == dataclasses.asdict(eager)
    assert "_read_state" not in {f.name for f in dataclasses.fields(snapshot)}
    reader.close()
