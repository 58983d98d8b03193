"""A write to a big dict field is validated in the keys it touched, and gives exactly the state
and the changes that validating the whole dict gives (`durable_graph/dict_writes.py`)."""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import AfterValidator, BaseModel, Field, model_validator

from durable_graph.changes import dict_patch, touched
from durable_graph.checkpoint import same
from durable_graph.errors import InvalidInput, SerializationError
from durable_graph.state import Applied, StateSchema

SEEN: list[Any] = []


def counted(value: Any) -> Any:
    SEEN.append(value)
    return value


def merge_dicts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


def merge_and_count(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A reducer that also changes a key the write did not name."""
    return {**old, **new, "k0": old.get("k0", 0) + 1}


class Item(BaseModel):
    name: Annotated[str, AfterValidator(counted)]
    score: float = 0.0


class Big(BaseModel):
    index: dict[str, Annotated[int, AfterValidator(counted)]] = Field(default_factory=dict)
    facts: Annotated[dict[str, Annotated[str, AfterValidator(counted)]], merge_dicts] = Field(
        default_factory=dict
    )
    scores: dict[str, float] = Field(default_factory=dict)
    items: dict[str, Item] = Field(default_factory=dict)
    counts: Annotated[dict[str, int], merge_and_count] = Field(default_factory=dict)
    capped: Annotated[dict[str, int], Field(max_length=500)] = Field(default_factory=dict)
    anything: dict[str, Any] | None = None


def big_state(schema: StateSchema, keys: int = 300) -> dict[str, Any]:
    return schema.initial(
        {
            "index": {f"k{i}": i for i in range(keys)},
            "facts": {f"f{i}": f"fact {i}" for i in range(keys)},
            "scores": {f"s{i}": i / 2 for i in range(keys)},
            "items": {f"i{i}": {"name": f"item {i}"} for i in range(keys)},
            "counts": {f"k{i}": i for i in range(keys)},
            "capped": {f"c{i}": i for i in range(keys)},
            "anything": {f"a{i}": [i, {"x": i}] for i in range(keys)},
        }
    )


def outcome(schema: StateSchema, state: dict[str, Any], writes: list[dict[str, Any]]) -> Any:
    """What folding `writes` gives, as JSON text that tells 1, 1.0 and true apart and keeps
    key order, or the error it raises."""
    try:
        applied: Applied = schema.fold(state, writes, where="test")
    except (InvalidInput, SerializationError) as exc:
        return (type(exc).__name__, str(exc))
    changes = {k: [c.op, c.value] for k, c in applied.changes.items()}
    return json.dumps([applied.values, changes])


def test_touched_finds_the_keys_that_do_not_hold_the_old_objects() -> None:
    old = {"a": [1], "b": [2], "c": [3]}
    assert touched(old, {**old, "b": [2], "d": 4}) == ["b", "d"]
    assert touched(old, dict(old)) == []
    assert touched(old, {"a": old["a"], "c": old["c"]}) is None  # a key removed
    assert touched(old, {"b": old["b"], "a": old["a"], "c": old["c"]}) is None  # moved
    typed = {"a": ("A",), "b": ("B",), "c": ("C",)}
    assert touched(old, {**typed, "b": 5}, typed) == ["b"]


def test_dict_patch_compares_touched_keys_as_json() -> None:
    old = {"a": 1, "b": [1.0], "c": "x"}
    assert dict_patch(old, {"a": True, "b": [1.0], "c": "x"}) == {"a": True}
    assert dict_patch(old, {"a": 1, "b": [1], "c": "x", "d": None}) == {"b": [1], "d": None}
    assert dict_patch(old, {"a": 2, "b": [2], "c": "y"}) is None  # every key changed: a set
    assert dict_patch(old, {"c": "x", "a": 1, "b": [1.0]}) is None  # keys moved
    assert dict_patch(old, {"a": 1, "b": [1.0], "c": "x"}, []) == {}


def test_a_dict_written_back_with_a_key_added_validates_only_that_key() -> None:
    """Given a dict of 300 keys, when a node writes it back whole with one key added (from
    the state it was handed), then the node's output check and the fold validate that key
    alone, and the step's change is a merge of it."""
    schema = StateSchema(Big)
    state = big_state(schema)
    handed = schema.to_state(state)
    SEEN.clear()
    write = schema.check({"index": {**handed.index, "new": 7}}, where="node", current=state)
    assert SEEN == [7]
    SEEN.clear()
    applied = schema.fold(state, [write], where="superstep")
    assert SEEN == [7]
    assert applied.values["index"] == {**state["index"], "new": 7}
    assert applied.changes["index"].op == "merge"
    assert applied.changes["index"].value == {"new": 7}
    assert schema.to_model(applied.values).index["new"] == 7  # type: ignore[attr-defined]


def test_a_dict_of_models_written_back_validates_only_the_new_model() -> None:
    """Given `dict[str, Item]` handed to a node as models, when it writes the dict back with
    one model added, then only that model is validated (the others are the very objects the
    node was handed) and the state holds its JSON."""
    schema = StateSchema(Big)
    state = big_state(schema)
    handed = schema.to_state(state)
    SEEN.clear()
    write = schema.check(
        {"items": {**handed.items, "new": Item(name="n", score=2)}}, where="node", current=state
    )
    assert set(SEEN) == {"n"}  # written out as JSON, then checked: nothing else
    SEEN.clear()
    applied = schema.fold(state, [write], where="superstep")
    assert SEEN == ["n"]
    assert applied.changes["items"].value == {"new": {"name": "n", "score": 2.0}}
    model = schema.to_model(applied.values)
    assert model.items["new"] == Item(name="n", score=2)  # type: ignore[attr-defined]
    assert model.items["i3"] == Item(name="item 3")  # type: ignore[attr-defined]


def test_a_dict_reducer_validates_only_the_keys_it_was_given() -> None:
    schema = StateSchema(Big)
    state = big_state(schema)
    SEEN.clear()
    applied = schema.fold(state, [{"facts": {"f1": "new", "f999": "more"}}], where="superstep")
    assert sorted(SEEN) == ["more", "new"]
    assert applied.changes["facts"].op == "merge"
    assert applied.changes["facts"].value == {"f1": "new", "f999": "more"}


CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("key added", [{"index": {"new": 1}}]),
    ("key replaced", [{"index": {"k3": 33}}]),
    ("replaced by an equal value", [{"index": {"k3": 3}}]),
    ("float field given an int", [{"scores": {"s1": 2, "new": 3}}]),
    ("int field given a float", [{"index": {"k1": 2.0}}]),
    ("bool for an int", [{"index": {"k1": True}}]),
    ("a key removed", [{"index": "drop k5"}]),
    ("keys moved", [{"index": "reverse"}]),
    ("every key changed", [{"index": "all"}]),
    ("a bad value", [{"index": {"k2": "two"}}]),
    ("not JSON", [{"anything": {"a1": {1, 2}}}]),
    ("nested value replaced", [{"anything": {"a1": [1, {"x": 1.0}]}}]),
    ("reducer changing another key", [{"counts": {"k9": 90}}]),
    ("two writes to one dict", [{"facts": {"f1": "a"}}, {"facts": {"f2": "b", "f1": "f1"}}]),
    ("a set, then a patch", [{"index": {"only": 1}}, {"index": {"only": 1, "k": 2}}]),
    ("constrained dict", [{"capped": {"new": 1}}]),
    ("constrained dict over its limit", [{"capped": {f"x{i}": i for i in range(490)}}]),
    ("a model dict", [{"items": {"i1": {"name": "renamed"}}}]),
]


def _writes(state: dict[str, Any], spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The writes of a case: a dict reducer field gets its patch; any other dict field is
    written back whole over the state (as a node does), sharing the state's objects."""
    writes: list[dict[str, Any]] = []
    running = dict(state)
    for write in spec:
        out: dict[str, Any] = {}
        for key, patch in write.items():
            old = running[key]
            if key in ("facts", "counts"):
                out[key] = patch
                continue
            if patch == "drop k5":
                new = {k: v for k, v in old.items() if k != "k5"}
            elif patch == "reverse":
                new = dict(reversed(list(old.items())))
            elif patch == "all":
                new = {k: 1 for k in old}
            elif key == "index" and "only" in patch and len(patch) == 1:
                new = dict(patch)
            else:
                new = {**old, **patch}
            out[key] = running[key] = new
        writes.append(out)
    return writes


@pytest.mark.parametrize(("name", "spec"), CASES, ids=[c[0] for c in CASES])
def test_a_dict_write_gives_what_whole_validation_gives(
    name: str, spec: list[dict[str, Any]]
) -> None:
    """Given a write that shares the state's objects (validated key by key) and the same
    write deep-copied (nothing shared: every key validated, as whole validation does), the
    new state, its key order, the changes (op and value, compared as JSON text) and any error
    are identical."""
    schema = StateSchema(Big)
    state = big_state(schema, keys=20)
    shared = _writes(state, spec)
    fast = outcome(schema, state, shared)
    whole = outcome(schema, state, copy.deepcopy(shared))
    assert fast == whole
    if name == "reducer changing another key":
        assert '["merge", {"k0": 2, "k9": 90}]' in str(fast)  # found, though not written
    if name in ("a bad value", "not JSON", "constrained dict over its limit"):
        assert isinstance(fast, tuple)


class Guarded(BaseModel):
    """A model with a validator of its own sees every field: validated whole."""

    index: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def stamp(self) -> Guarded:
        self.index["k0"] = len(self.index)
        return self


def test_a_model_with_validators_of_its_own_is_validated_whole() -> None:
    schema = StateSchema(Guarded)
    state = schema.initial({"index": {f"k{i}": i for i in range(10)}})
    applied = schema.fold(state, [{"index": {**state["index"], "new": 1}}], where="superstep")
    assert applied.values["index"]["k0"] == 11
    assert applied.changes["index"].value == {"k0": 11, "new": 1}
    assert same(applied.values["index"], {**state["index"], "k0": 11, "new": 1})


def test_a_bad_key_names_its_path() -> None:
    schema = StateSchema(Big)
    state = big_state(schema)
    with pytest.raises(InvalidInput, match=r"field 'index\.k7'") as caught:
        schema.check({"index": {**state["index"], "k7": "seven"}}, where="node", current=state)
    assert caught.value.field == "index.k7"
    with pytest.raises(SerializationError, match=r"anything\.a3"):
        schema.fold(state, [{"anything": {**state["anything"], "a3": {1}}}], where="node")
    assert state["index"]["k7"] == 7  # nothing changed


class Plain(TypedDict):
    index: dict[str, Annotated[int, AfterValidator(counted)]]
    note: str


def test_a_typeddict_state_dict_field_is_checked_in_what_it_touched_too() -> None:
    """Given a TypedDict state (its dict field without a default: `dict | None`), when a node
    writes the dict it was handed back with a key replaced, then that key alone is validated
    and the change is a merge of it."""
    schema = StateSchema(Plain)
    state = schema.initial({"index": {f"k{i}": i for i in range(100)}, "note": ""})
    handed = schema.to_state(state)
    SEEN.clear()
    write = schema.check({"index": {**handed["index"], "k5": 55}}, where="node", current=state)
    applied = schema.fold(state, [write], where="superstep")
    assert SEEN == [55, 55]  # the node's output check, then the fold
    assert applied.changes["index"].op == "merge"
    assert applied.changes["index"].value == {"k5": 55}
    assert list(applied.values["index"])[5] == "k5" and applied.values["index"]["k5"] == 55
