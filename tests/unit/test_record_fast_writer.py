"""The fast record writer's preconditions, held to the models: every free-form field is one
`Checkpoint._plain` checks, and `Checkpoint.built` builds what `model_construct` does.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel

from durable_graph.checkpoint import Checkpoint, PayloadRef
from tests.unit.record_samples import records


def _any_fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """`Model.field` for every field typed `Any` (alone, or inside a list, dict or union) of
    `model` and the record models it holds."""
    found: set[str] = set()
    if model in seen:
        return found
    seen.add(model)
    for name, info in model.model_fields.items():
        stack: list[Any] = [info.annotation]
        while stack:
            kind = stack.pop()
            if kind is Any:
                found.add(f"{model.__name__}.{name}")
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _any_fields(kind, seen)
            else:
                stack.extend(get_args(kind))
    return found


def test_every_free_form_field_is_one_the_fast_writer_checks() -> None:
    """The hash body and stored row are written without walking them when their free-form
    parts hold plain JSON (`Checkpoint._plain`): so every field typed `Any` must be one it
    checks (or, like `values`, in neither). A new one fails here until it is added there."""
    assert _any_fields(Checkpoint, set()) == {
        "Change.v",
        "Task.arg",
        "InterruptInfo.payload",
        "IoRecord.response",
        "Checkpoint.values",
        "Checkpoint.resume",
        "Checkpoint.io_in",
    }


def test_a_record_built_from_its_fields_is_the_one_model_construct_builds() -> None:
    """`Checkpoint.built` (the sealer's unvalidated constructor) gives what pydantic's
    `model_construct` gives: equal, dumped alike, and a missing or unknown field is
    refused."""
    for record in records():
        fields = dict(record.__dict__)
        built = Checkpoint.built(dict(fields))
        constructed = Checkpoint.model_construct(**fields)
        assert built == constructed == record
        assert built.model_dump() == constructed.model_dump()
        assert list(built.model_dump()) == list(constructed.model_dump())
        assert built.model_fields_set == constructed.model_fields_set
        with pytest.raises(KeyError, match="hsah"):
            Checkpoint.built({**fields, "hsah": ""})
        del fields["hash"]
        with pytest.raises(KeyError, match="hash"):
            Checkpoint.built(fields)


def test_a_record_part_copied_is_the_copy_pydantic_makes() -> None:
    """`Record.copied` (the sealer's cheap copy) gives what `model_copy(update=...)` gives:
    equal, dumped alike, the same fields set, its private attributes its own; the original
    unchanged."""
    for record in records():
        for part in [record, *record.next, *record.io, record.interrupt, record.error]:
            if part is None:
                continue
            before = part.model_dump()
            update = {"s": "ab" * 16} if "s" in type(part).model_fields else {"step": 9}
            copied = part.copied(**update)
            expected = part.model_copy(update=update)
            assert copied == expected and copied is not part
            assert copied.model_dump() == expected.model_dump() != before
            assert copied.model_fields_set == expected.model_fields_set
            assert part.model_dump() == before
    ref = PayloadRef(uri="sha256/ab/cd", sha256="ab" * 32, size=1)
    record = records()[0].with_fresh([])
    assert record.copied(step=1).with_fresh([ref]).fresh == (ref,)
    assert record.fresh == ()
