"""Reducers, validation and JSON-only state."""

from __future__ import annotations

import operator
from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, Field

from durable_graph.errors import InvalidInput, SerializationError
from durable_graph.state import StateSchema, normalise_update


class Chat(BaseModel):
    title: str = ""
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    count: int = 0


def test_reducer_fields_accumulate_and_others_overwrite() -> None:
    schema = StateSchema(Chat)
    assert set(schema.reducers) == {"messages"}
    state = schema.initial({"title": "t", "messages": ["a"]})
    state = schema.apply(
        state, [{"messages": ["b"]}, {"messages": ["c"], "title": "u"}], where="test"
    )
    assert state == {"title": "u", "messages": ["a", "b", "c"], "count": 0}


def test_validation_names_the_field() -> None:
    schema = StateSchema(Chat)
    with pytest.raises(InvalidInput, match="field 'count'") as caught:
        schema.apply(schema.initial({}), [{"count": "many"}], where="values")
    assert caught.value.field == "count"


def test_unknown_field_is_refused() -> None:
    schema = StateSchema(Chat)
    with pytest.raises(InvalidInput, match="'colour' is not a field of Chat"):
        schema.apply(schema.initial({}), [{"colour": "red"}], where="values")


def test_non_json_value_names_its_path() -> None:
    schema = StateSchema(Chat)
    with pytest.raises(SerializationError, match=r"messages\[1\]"):
        schema.apply(schema.initial({}), [{"messages": ["ok", {1, 2}]}], where="node 'x' output")


def test_node_must_return_a_mapping() -> None:
    assert normalise_update(None, node="n") == {}
    with pytest.raises(InvalidInput, match="node 'n' returned list"):
        normalise_update(["x"], node="n")


def test_a_node_that_appends_to_its_input_in_place_changes_no_later_state() -> None:
    """Given the model handed to a node, when the node appends to its list in place (instead
    of returning the item), then the next step's model, derived from the kept one, does not
    see that item: only returned updates reach the state."""
    schema = StateSchema(Chat)
    first = schema.initial({"messages": ["a"]})
    handed = schema.to_model(first)
    handed.messages.append("sneaky")  # type: ignore[attr-defined]
    second = schema.fold(first, [{"messages": ["b"]}], where="test").values
    assert schema.to_model(second).messages == ["a", "b"]  # type: ignore[attr-defined]
    assert second["messages"] == ["a", "b"]


def test_a_derived_model_grows_its_list_in_place_and_no_earlier_state_sees_it() -> None:
    """Given a state whose kept model the next step's model is derived from (its list grown
    in place, not copied), then a model handed out before, the earlier JSON state, the
    earlier state read again and a second fold from it (a retried step) all stay as they
    were: only the kept model, never handed out, moves on."""
    schema = StateSchema(Chat)
    first = schema.initial({"messages": ["a"]})
    handed = schema.to_model(first)
    second = schema.fold(first, [{"messages": ["b"]}], where="test").values
    third = schema.fold(second, [{"messages": ["c"]}], where="test").values
    assert handed.messages == ["a"]  # type: ignore[attr-defined]
    assert first["messages"] == ["a"] and second["messages"] == ["a", "b"]
    assert schema.to_model(first).messages == ["a"]  # type: ignore[attr-defined]
    assert schema.to_model(second).messages == ["a", "b"]  # type: ignore[attr-defined]
    assert schema.to_model(third).messages == ["a", "b", "c"]  # type: ignore[attr-defined]
    again = schema.fold(second, [{"messages": ["x"]}], where="test").values
    assert schema.to_model(again).messages == ["a", "b", "x"]  # type: ignore[attr-defined]
    assert schema.to_model(third).messages == ["a", "b", "c"]  # type: ignore[attr-defined]


def test_a_checked_update_is_validated_once_per_step() -> None:
    """Given a node's update validated by `check` (the node's output), when the step folds it,
    then no field is validated again; folding the same update a second time (it is not the
    one `check` handed out any more) validates it again, and both folds give the same state
    and the same model, each with its own list."""
    seen: list[str] = []

    def counted(value: str) -> str:
        seen.append(value)
        return value

    class Counted(BaseModel):
        title: Annotated[str, AfterValidator(counted)] = ""
        messages: Annotated[list[str], operator.add] = Field(default_factory=list)

    schema = StateSchema(Counted)
    start = schema.initial({})
    seen.clear()
    update = schema.check({"title": "t", "messages": ["a"]}, where="node 'n' output")
    assert seen == ["t"]
    first = schema.fold(start, [update], where="superstep")
    assert seen == ["t"]  # not again
    second = schema.fold(start, [update], where="superstep")
    assert seen == ["t", "t"]
    assert first.values == second.values == {"title": "t", "messages": ["a"]}
    one, two = schema.to_model(first.values), schema.to_model(second.values)
    assert one.model_dump() == two.model_dump()
    assert one.messages is not two.messages  # type: ignore[attr-defined]
