"""The record format is a contract (`docs/record-format.md`): for the same record, the stored
row and the hash are the same bytes whatever code writes them. A record sealed by a real flow, and
one with any free-form part, stores and hashes exactly what the format's definition gives
(`record_reference.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from durable_graph.backends.local import local_backend
from durable_graph.canonical import digest
from durable_graph.checkpoint import Change, InterruptInfo, IoRecord, Task
from examples.email_approval import graph as email_graph
from tests.ledger.graphs import graph as chat_graph
from tests.unit.record_reference import reference_body, reference_row
from tests.unit.record_samples import records


def test_every_record_of_real_flows_is_stored_and_hashed_as_the_format_defines(
    tmp_path: Path,
) -> None:
    """Given the seed approval flow and a 70-turn chat (lists growing, fields kept, io
    responses pointed to), when every record is read back, then its row and hash are what the
    format's definition gives, and its hash is the one it was sealed with."""
    backend = local_backend(tmp_path / "home")
    email = email_graph.with_backend(backend)
    for n in range(3):
        email.invoke({"user_prompt": f"pay {n}"}, thread_id=f"e-{n}")
        email.resume(f"e-{n}", values={"approved": n != 1}, as_node="human_review")
    chat = chat_graph.with_backend(backend)
    chat.invoke({"limit": 70, "attachment": "A" * 5000}, {"recursion_limit": 1000}, thread_id="c")
    seen = 0
    for thread in ("e-0", "e-1", "e-2", "c"):
        for record in backend.checkpoints.list_checkpoints(thread, newest_first=False):
            assert record.to_stored_json() == reference_row(record)
            assert record.compute_hash() == digest(reference_body(record)) == record.hash
            seen += 1
        for stored in backend.checkpoints.ledger(thread):
            restored = stored.with_io_restored()
            assert restored.compute_hash() == digest(reference_body(restored)) == stored.hash
    assert seen > 80
    backend.close()


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    value=_json,
    arg=_json,
    payload=_json,
    response=_json,
    field=st.text(min_size=1, max_size=4),
    duration=st.floats(min_value=0, max_value=1e20, allow_nan=False),
)
def test_property_any_free_form_part_stores_and_hashes_as_the_format_defines(
    value: Any, arg: Any, payload: Any, response: Any, field: str, duration: float
) -> None:
    """For any JSON in a record's free-form parts (a change value and its field's name, a
    task argument, an interrupt payload, a resume value, an io response) and any duration,
    the row and hash are what the format's definition gives, whether the fast writer takes
    the record or leaves it to the full encoders."""
    base = records()[1]
    record = base.model_copy(
        update={
            "changes": {field: Change(op="set", d="55" * 32, s="66" * 16, v=value)},
            "next": [Task(id="1:x", node="x", arg=arg)],
            "interrupt": InterruptInfo(node="x", when="during", payload=payload),
            "resume": {"1:x": [value, payload]},
            "io": [
                IoRecord(
                    task_id="1:x",
                    name="n",
                    kind="record",
                    response_sha256="aa" * 32,
                    response=response,
                )
            ],
            "duration_ms": duration,
        }
    )
    assert record.to_stored_json() == reference_row(record)
    assert record.compute_hash() == digest(reference_body(record))
