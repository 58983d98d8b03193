"""`sealing.py` builds records without validating them again (`model_construct`, every field
given) and `changes.py` its changes: what it builds must be exactly what validation builds from
the same fields, hashes and stored rows included."""

from __future__ import annotations

from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.engine import Outcome
from examples.email_approval import graph as email_graph


def test_a_sealed_record_is_what_validation_builds_from_its_fields(tmp_path: Path) -> None:
    """Given the records the seed flow seals (start, the draft with its io record, the human
    update, the send with its effect), when each is validated again from its own fields, then
    the copy equals it, hashes to its hash and stores the same row."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    outcomes: list[Outcome] = []
    sealed = [app.start({"user_prompt": "pay"}, thread_id="t-1")]
    app.run_until_settled("t-1", on_outcome=outcomes.append)
    sealed.append(app.resume("t-1", values={"approved": True}, as_node="human_review", run=False))
    app.run_until_settled("t-1", on_outcome=outcomes.append)
    sealed += [o.checkpoint for o in outcomes if o.checkpoint is not None]
    assert [c.step for c in sorted(sealed, key=lambda c: c.step)] == [0, 1, 2, 3]
    for record in sealed:
        again = Checkpoint.model_validate(record.model_dump())
        assert again == record
        assert again.compute_hash() == record.hash
        assert again.to_stored_json() == record.to_stored_json()
        for name, change in record.changes.items():
            assert type(change).model_validate(change.model_dump()) == change, name
    backend.close()
