"""A sealed record's stored row is taken from one dump of the record (not from a `stored()`
copy dumped again): held here to the reference row and hash (`record_reference.py`), for
records with every field set and left at its default, nested too, and io kept once."""

from __future__ import annotations

from typing import Any

from durable_graph.canonical import digest
from durable_graph.checkpoint import Checkpoint, IoRecord
from tests.unit.record_reference import reference_body, reference_row
from tests.unit.record_samples import records
from tests.unit.test_salted_record_bytes import salted_record


def test_a_record_sealed_from_its_fields_stores_and_hashes_as_the_reference() -> None:
    """Given every sample record, when it is sealed again from its fields, then its hash is
    the reference digest of its body, its row is the reference row (the stored form dumped
    without its defaults), and the record it was sealed from is unchanged."""
    for record in [*records(), salted_record(), salted_record(erased=True)]:
        fields: dict[str, Any] = dict(record.__dict__)
        before = record.model_dump()
        again = Checkpoint.built_sealed(fields)
        assert again.hash == digest(reference_body(again))
        assert again.to_stored_json() == reference_row(again)
        assert record.model_dump() == before


def test_an_io_response_the_step_also_put_into_the_state_is_stored_once() -> None:
    """Given a sealed record whose io response is also a change's value, then its row holds
    the response once (a pointer from the io record to the change) and no derived digest,
    as the reference row does."""
    record = next(r for r in records() if r.format == 2 and r.io_ref is None and r.changes)
    name, change = next((n, c) for n, c in record.changes.items() if c.v is not None)
    io = IoRecord(task_id="1:a", name="llm", kind="record", response=change.v, s="ab" * 16)
    fields: dict[str, Any] = {**record.__dict__, "io": [io], "io_in": {}}
    again = Checkpoint.built_sealed(fields)
    row = again.to_stored_json()
    assert row == reference_row(again)
    assert f'"io_in":{{"0":["{name}"]}}' in row and "response" not in row
