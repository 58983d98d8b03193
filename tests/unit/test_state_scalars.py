"""Fields checked by a type test (`state_scalars.py`), the state model copied without
`model_copy` (`state_cache.copied`) and defaults handed out as they are: each gives what
pydantic itself gives."""

from __future__ import annotations

import enum
import operator
from typing import Annotated, Any, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from durable_graph.errors import InvalidInput
from durable_graph.model_copies import copied
from durable_graph.state import StateSchema
from durable_graph.state_scalars import plain_check


class Colour(enum.StrEnum):
    RED = "red"


class Label(str):
    pass


ANNOTATIONS: list[Any] = [
    str, int, bool, float, str | None, Optional[int], bool | None, list[str], list[int],  # noqa: UP045 (typing.Union, not X | None)
    list[bool | None], list[float], dict[str, str], int | str, list[list[str]], Colour,
]  # fmt: skip
VALUES: list[Any] = [
    "a", "", 1, 0, 2**70, True, False, None, 1.5, 2.0, [], ["a", "b"], [1, 2], [True, None],
    [1, "a"], ["a", None], {"a": "b"}, Colour.RED, Label("x"), ["a", Label("x")], (1, 2), "1",
    [["a"]],
]  # fmt: skip


@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=str)
def test_a_value_passing_the_type_test_is_what_the_adapter_and_its_dump_give_back(
    annotation: Any,
) -> None:
    """Given each annotation and many values, whenever the type test passes, pydantic's
    adapter accepts the value and both it and its JSON dump equal it, of the same types (a
    bool is never taken for an int, a subclass never for its base)."""
    check = plain_check(annotation)
    if check is None:
        return
    adapter = TypeAdapter(annotation)
    passed = 0
    for value in VALUES:
        if not check(value):
            continue
        passed += 1
        typed = adapter.validate_python(value)
        dumped = adapter.dump_python(typed, mode="json")
        for got in (typed, dumped):
            assert got == value and type(got) is type(value), (annotation, value)
            if type(value) is list:
                assert [type(i) for i in got] == [type(i) for i in value]
    assert passed > 0


def test_only_the_plain_forms_have_a_type_test() -> None:
    have = [a for a in ANNOTATIONS if plain_check(a) is not None]
    assert have == [str, int, bool, str | None, Optional[int], bool | None, list[str],  # noqa: UP045
                    list[int], list[bool | None]]  # fmt: skip
    assert not plain_check(int)(True)  # type: ignore[misc]
    assert not plain_check(str)(Label("x"))  # type: ignore[misc]
    assert not plain_check(list[str])(("a",))  # type: ignore[misc]


class Limited(BaseModel):
    short: Annotated[str, Field(max_length=2)] = ""
    count: int = 0
    tags: Annotated[list[str], operator.add] = Field(default_factory=list)


def test_a_constrained_field_is_still_checked_and_a_converted_value_still_converted() -> None:
    """A field declared with a constraint goes through its adapter (a long string refused); a
    value of another type is converted by it as before ("7" to 7); a list's JSON and python
    values are new lists, neither the node's."""
    schema = StateSchema(Limited)
    with pytest.raises(InvalidInput, match="field 'short'"):
        schema.check({"short": "abc"}, where="node 'n' output")
    start = schema.initial({})
    assert schema.fold(start, [{"count": "7"}], where="w").values["count"] == 7
    tags = ["a"]
    update = schema.check({"tags": tags}, where="node 'n' output")
    state = schema.fold(start, [update], where="w").values
    assert state["tags"] == ["a"] and state["tags"] is not tags
    assert schema.to_model(state).tags == ["a"]  # type: ignore[attr-defined]


class Kept(BaseModel):
    title: str = "untitled"
    score: float = 0.5
    items: list[str] = Field(default_factory=list)
    extra_list: list[int] = [1]
    _secret: str = PrivateAttr(default="s")


def test_defaults_are_pydantics_and_a_mutable_one_is_never_shared() -> None:
    schema = StateSchema(Kept)
    one, two = schema.initial({}), schema.initial({"title": "t"})
    assert one == Kept().model_dump(mode="json")
    assert list(one) == list(Kept.model_fields)
    assert two["title"] == "t"
    assert one["items"] is not two["items"] and one["extra_list"] is not two["extra_list"]


class Allowing(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: list[str] = Field(default_factory=list)


@pytest.mark.parametrize("model", [Kept(title="x", items=["a"]), Allowing(a=["b"], z=1)])
def test_a_copy_is_the_one_model_copy_makes(model: BaseModel) -> None:
    """`copied` gives `model_copy`'s result: fields, fields set, extra and private values, each
    copy with its own containers where model_copy has them."""
    update = {"items": ["b"]} if isinstance(model, Kept) else {"a": ["c"], "y": 2}
    ours, theirs = copied(model, dict(update)), model.model_copy(update=dict(update))
    assert type(ours) is type(theirs)
    assert ours.__dict__ == theirs.__dict__
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.__pydantic_extra__ == theirs.__pydantic_extra__
    assert ours.__pydantic_private__ == theirs.__pydantic_private__
    assert ours.model_fields_set is not model.model_fields_set
    if model.__pydantic_private__ is not None:
        assert ours.__pydantic_private__ is not model.__pydantic_private__
        ours._secret = "changed"  # type: ignore[attr-defined]
        assert model._secret == "s"  # type: ignore[attr-defined]
