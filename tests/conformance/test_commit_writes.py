"""A step's commit with its companions (`CommitWrites`: thread head, small records), on every
backend: one transaction on DynamoDB for a small row, the row alone then its companions for a
large one, the same unit of work elsewhere. Whatever the path, the step's condition alone
decides the commit."""

from __future__ import annotations

import base64
import random

import pytest

from durable_graph.backend import Backend
from durable_graph.checkpoint import ParentRef
from durable_graph.errors import StepConflict
from durable_graph.ports.commit_writes import CommitWrites, RecordWrite
from tests.helpers import checkpoint, thread_record

# A row DynamoDB folds into one transaction with its companions, and one it puts alone (its
# write units, zlib-compressed, are more than FOLD_EXTRA_UNITS): random text does not compress.
SIZES = {"small row": 10, "large row": 6000}


def text(size: int) -> str:
    return base64.b64encode(random.Random(size).randbytes(size))[:size].decode()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_step_commits_with_its_head_and_records(backend: Backend, size: str) -> None:
    """Given a new step, its thread head and two records
    When the step is appended with them
    Then the step, the head and both records are stored."""
    store = backend.checkpoints
    step = checkpoint("t1", 0, {"text": text(SIZES[size])}, status="suspended")
    writes = CommitWrites(
        head=thread_record("t1", "suspended", head=0),
        records=(RecordWrite("sig#0", {"by": "key"}), RecordWrite("approval#h", {"state": "i"})),
    )
    store.append_checkpoint(step, writes)
    assert store.get_checkpoint("t1", 0) == step
    head = store.get_thread("t1")
    assert head is not None and (head.status, head.head_step) == ("suspended", 0)
    found = store.get_records("t1", ["sig#0", "approval#h"])
    assert {k: (r.value, r.version) for k, r in found.items()} == {
        "sig#0": ({"by": "key"}, 1),
        "approval#h": ({"state": "i"}, 1),
    }


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_step_that_loses_writes_none_of_its_companions(backend: Backend, size: str) -> None:
    """Given step 0 committed
    When another writer appends step 0 with a head and a record
    Then StepConflict carries the winner, and neither the head nor the record was written."""
    store = backend.checkpoints
    winner = checkpoint("t1", 0, {"who": "winner"})
    store.append_checkpoint(winner)
    loser = checkpoint("t1", 0, {"who": "loser", "text": text(SIZES[size])}, status="completed")
    writes = CommitWrites(
        head=thread_record("t1", "completed", head=0), records=(RecordWrite("sig#0", {"a": 1}),)
    )
    with pytest.raises(StepConflict) as caught:
        store.append_checkpoint(loser, writes)
    assert caught.value.existing == winner
    assert store.get_thread("t1") is None
    assert store.get_record("t1", "sig#0") is None


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_companion_that_loses_its_condition_never_stops_the_step(
    backend: Backend, size: str
) -> None:
    """Given a record that already exists and a thread head already further on
    When a step is appended with a create of that record, another record and an older head
    Then the step commits, the existing record and the further head are kept as they were,
    and the other record is written."""
    store = backend.checkpoints
    store.append_checkpoint(checkpoint("t1", 0))
    store.advance_thread(thread_record("t1", "running", head=5))
    store.put_record("t1", "sig#1", {"first": True}, expected_version=None)
    step = checkpoint("t1", 1, {"text": text(SIZES[size])}, status="completed")
    writes = CommitWrites(
        head=thread_record("t1", "completed", head=1),
        records=(RecordWrite("sig#1", {"first": False}), RecordWrite("other", {"ok": 1})),
    )
    store.append_checkpoint(step, writes)
    assert store.get_checkpoint("t1", 1) == step
    head = store.get_thread("t1")
    assert head is not None and (head.status, head.head_step) == ("running", 5)
    kept = store.get_record("t1", "sig#1")
    assert kept is not None and kept.value == {"first": True}
    other = store.get_record("t1", "other")
    assert other is not None and other.value == {"ok": 1}


def test_a_head_moves_forward_only_and_keeps_its_birth(backend: Backend) -> None:
    """Given a thread head created at step 1 with its creation time and origin
    When later heads (another creation time, no origin) and then an older one are written
    Then the head moves to each later step, keeps its first creation time and origin, counts
    its writes, and the older head is refused."""
    store = backend.checkpoints
    origin = ParentRef(thread_id="elsewhere", step=3, hash="ab" * 32)
    first = thread_record("t1", "running", head=1).model_copy(update={"origin": origin})
    assert store.advance_thread(first)
    later = thread_record("t1", "suspended", head=4).model_copy(
        update={"created_at": "2026-02-02T00:00:00.000000Z", "updated_at": "2026-02-02T00:00:00Z"}
    )
    assert store.advance_thread(later)
    assert store.advance_thread(later.model_copy(update={"status": "running", "head_step": 5}))
    assert not store.advance_thread(thread_record("t1", "completed", head=2))
    head = store.get_thread("t1")
    assert head is not None
    assert (head.status, head.head_step, head.updated_at) == ("running", 5, later.updated_at)
    assert (head.created_at, head.origin) == (first.created_at, origin)
    assert head.revision == 3
