"""Snapshots name their format, and a reader refuses one it does not read (a newer release's),
naming the thread, the step and what it does not understand, instead of reading a value it
cannot find as missing (`backends/snapshots.py`, `docs/record-format.md` §7, §11)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backends import segment_payloads, snapshots
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.folder_payloads import FolderPayloadStore
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord, UnsupportedFormat
from durable_graph.verification import verify_thread
from tests.big_state_graphs import dict_graph
from tests.helpers import edit_stored_row, stored_rows

NO_LIMIT = {"recursion_limit": 1_000_000}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Checkpoint, int]:
    """A 140-step thread of `dict_graph` (its dicts over 64 keys: kept in dict segments), its
    warm head and the step of its last snapshot, which a cold read of the head starts from."""
    home = tmp_path_factory.mktemp("dicts")
    backend = local_backend(home, clock=ManualClock())
    dict_graph.with_backend(backend, clock=ManualClock()).invoke(
        {"limit": 140}, NO_LIMIT, thread_id="d"
    )
    head = backend.checkpoints.head_checkpoint("d")
    backend.close()
    assert head is not None
    steps = [step for step, row in stored_rows(home / "state.db", "d").items() if "snap" in row]
    assert steps[-1] == head.anchor
    return home, head, steps[-1]


@pytest.fixture
def dict_thread(
    written: tuple[Path, Checkpoint, int], tmp_path: Path
) -> tuple[Path, Checkpoint, int]:
    """A copy of that thread's store for one test to alter."""
    home, head, step = written
    shutil.copytree(home, tmp_path / "home")
    return tmp_path / "home", head, step


def rewrite_snapshot(home: Path, step: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """Replace the snapshot row `step` names with an edited copy of its document, as a writer
    of another release would have stored it (snapshots are read hints: no hash changes)."""
    payloads = FolderPayloadStore(home / "payloads")
    ref = PayloadRef.model_validate(stored_rows(home / "state.db", "d")[step]["snap"])
    doc = segment_payloads.unpack(payloads.get(ref))
    edit(doc)
    new = payloads.put(segment_payloads.pack(doc, zstd=False), snapshots.SNAPSHOT_CONTENT_TYPE)
    snap = new.model_dump(mode="json")
    edit_stored_row(home / "state.db", "d", step, lambda row: row.update(snap=snap))


def cold_head(home: Path) -> Checkpoint | None:
    backend = local_backend(home)
    try:
        return backend.checkpoints.head_checkpoint("d")
    finally:
        backend.close()


def test_this_release_names_its_snapshot_format_and_keeps_dicts_in_segments(
    dict_thread: tuple[Path, Checkpoint, int],
) -> None:
    tmp_path, head, step = dict_thread
    payloads = FolderPayloadStore(tmp_path / "payloads")
    ref = PayloadRef.model_validate(stored_rows(tmp_path / "state.db", "d")[step]["snap"])
    doc = segment_payloads.unpack(payloads.get(ref))
    assert doc["format"] == snapshots.SNAPSHOT_FORMAT == 3
    assert "dsegs" in doc["fields"]["facts"] and "dsegs" in doc["fields"]["index"]
    assert cold_head(tmp_path) == head


def test_a_snapshot_written_before_formats_were_named_still_reads(
    dict_thread: tuple[Path, Checkpoint, int],
) -> None:
    """Given the head's snapshot as the previous release wrote it (no `format`, dicts in
    `dsegs`), then a cold read gives the state the writer had."""
    tmp_path, head, step = dict_thread
    rewrite_snapshot(tmp_path, step, lambda doc: doc.pop("format"))
    assert cold_head(tmp_path) == head


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda doc: doc.update(format=4), "format 4"),
        (lambda doc: doc.update(format="3"), "format '3'"),
        (lambda doc: doc.update(tiers=[]), "keys ['tiers']"),
        (
            lambda doc: doc["fields"]["facts"].update(tsegs=doc["fields"]["facts"].pop("dsegs")),
            "field 'facts' as ['a', 'cnt', 'd', 'lv', 'n', 'tsegs']",
        ),
        (lambda doc: doc["fields"]["index"].update(zz=1), "field 'index' as"),
        (lambda doc: doc["fields"]["turns"].pop("v"), "field 'turns' as ['a', 'd']"),
    ],
    ids=["newer format", "format as text", "unknown key", "unknown form", "extra key", "none"],
)
def test_a_snapshot_this_release_does_not_read_is_refused_never_read_as_missing(
    dict_thread: tuple[Path, Checkpoint, int], edit: Callable[[dict[str, Any]], None], says: str
) -> None:
    """Given the head's snapshot in a form a newer release might write, then a cold read
    raises `UnsupportedFormat` naming the thread, the step and what it does not read (an
    older release read such a dict as missing), and `verify`, which folds the changes
    themselves, still passes."""
    tmp_path, _, step = dict_thread
    rewrite_snapshot(tmp_path, step, edit)
    with pytest.raises(UnsupportedFormat, match="newer release") as refused:
        cold_head(tmp_path)
    assert isinstance(refused.value, CorruptRecord)  # every reader that copes with one
    assert (refused.value.thread_id, refused.value.step) == ("d", step)
    assert says in str(refused.value) and f"step {step} of thread 'd'" in str(refused.value)
    backend = local_backend(tmp_path)
    assert verify_thread(backend, "d").ok
    backend.close()


def test_a_segment_of_the_wrong_shape_is_refused(
    dict_thread: tuple[Path, Checkpoint, int],
) -> None:
    """Given a dict's segment replaced by a list, then the read is refused instead of
    merging what it holds."""
    tmp_path, _, step = dict_thread
    payloads = FolderPayloadStore(tmp_path / "payloads")
    wrong = payloads.put(segment_payloads.pack(["a", "b"]), snapshots.SEGMENT_CONTENT_TYPE)

    def swap(doc: dict[str, Any]) -> None:
        doc["fields"]["facts"]["dsegs"][-1] = wrong.model_dump(mode="json")

    rewrite_snapshot(tmp_path, step, swap)
    with pytest.raises(CorruptRecord, match="facts: a segment holds list, not dict"):
        cold_head(tmp_path)
