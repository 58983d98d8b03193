"""The fast record writer's preconditions, held to the models: every free-form field is one
`Checkpoint._plain` checks, and `Checkpoint.built` builds what `model_construct` does.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel

from durable_graph.checkpoint import Checkpoint
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
    `model_construct` gives: equal, dumped alike, and a missing field is refused."""
    for record in records():
        fields = dict(record.__dict__)
        built = Checkpoint.built(**fields)
        constructed = Checkpoint.model_construct(**fields)
        assert built == constructed == record
        assert built.model_dump() == constructed.model_dump()
        assert list(built.model_dump()) == list(constructed.model_dump())
        assert built.model_fields_set == constructed.model_fields_set
        del fields["hash"]
        with pytest.raises(KeyError):
            Checkpoint.built(**fields)
