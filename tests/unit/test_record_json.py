"""`record_json.py` writes a plain record's hash body and stored row from its fields: they must
be exactly what pydantic's dumps give, so hashes and stored bytes do not change."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from durable_graph.backends.local import local_backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.engine import Outcome
from durable_graph.record_json import PART_DICTS, PART_FIELDS, PART_LISTS
from durable_graph.salted_parts import new_salt
from examples.email_approval import graph as email_graph


def _models_in(annotation: typing.Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel)
    return any(_models_in(arg) for arg in typing.get_args(annotation))


def test_the_part_fields_are_every_field_that_holds_a_part() -> None:
    """Given the record's annotations, then the fields named as holding parts are exactly those
    whose annotation holds a model, each in its shape (one, list, dict)."""
    holding = {n for n, f in Checkpoint.model_fields.items() if _models_in(f.annotation)}
    assert holding == PART_FIELDS | PART_LISTS | PART_DICTS
    for name in PART_LISTS:
        assert typing.get_origin(Checkpoint.model_fields[name].annotation) is list, name
    for name in PART_DICTS:
        assert typing.get_origin(Checkpoint.model_fields[name].annotation) is dict, name


def test_a_plain_record_is_written_as_pydantic_dumps_it(tmp_path: Path) -> None:
    """Given the records the seed flow seals and the rows read back, when the hash body and the
    stored row are written from the fields, then they equal pydantic's dumps."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    outcomes: list[Outcome] = []
    sealed = [app.start({"user_prompt": "pay"}, thread_id="t-1")]
    app.run_until_settled("t-1", on_outcome=outcomes.append)
    sealed.append(app.resume("t-1", values={"approved": True}, as_node="human_review", run=False))
    app.run_until_settled("t-1", on_outcome=outcomes.append)
    sealed += [o.checkpoint for o in outcomes if o.checkpoint is not None]
    sealed += list(backend.checkpoints.ledger("t-1"))
    assert len(sealed) == 8
    for record in sealed:
        assert record._plain()
        assert record.hash_body(True) == record.hash_body(False)
        dumped = record.stored().model_dump(mode="json", exclude_defaults=True)
        assert record._stored_doc() == dumped
    backend.close()


def test_salts_drawn_ahead_are_each_handed_out_once() -> None:
    salts = [new_salt() for _ in range(300)]
    assert len(set(salts)) == 300
    assert all(len(s) == 32 and int(s, 16) >= 0 for s in salts)
