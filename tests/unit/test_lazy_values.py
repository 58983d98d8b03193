"""`LazySequence` and `LazyValues` (`lazy_values.py`): a list field of a lazy read behaves as
the list it stands for under every index and slice, fetches only the pieces a read touches,
each once, and is never taken for a `list`."""

from __future__ import annotations

import copy
import json
import pickle
import random
from typing import Any

import pytest

from durable_graph.lazy_values import FieldSource, LazySequence, LazyValues

COUNTS = [5, 3, 0, 7, 1, 4]


def pieces() -> tuple[list[list[int]], list[int]]:
    out, start = [], 0
    for count in COUNTS:
        out.append(list(range(start, start + count)))
        start += count
    return out, [item for piece in out for item in piece]


def lazy(fetched: list[list[int]] | None = None) -> LazySequence:
    parts, _ = pieces()

    def fetch(indexes: list[int]) -> list[list[Any]]:
        if fetched is not None:
            fetched.append(indexes)
        return [parts[i] for i in indexes]

    return LazySequence(COUNTS, fetch, {5: parts[5]})


def test_every_index_and_slice_gives_what_the_list_gives() -> None:
    """Given a sequence of pieces of 5, 3, 0, 7, 1 and 4 items, then every index (negative
    too) and 2,000 random slices (any start, stop and step, past the ends too) give what the
    plain list gives, and an index past the end is an `IndexError`."""
    _, plain = pieces()
    seq = lazy()
    assert len(seq) == len(plain) == 20
    for i in range(-20, 20):
        assert seq[i] == plain[i]
    for bad in (20, -21):
        with pytest.raises(IndexError):
            seq[bad]
    rng = random.Random(8)
    for _ in range(2_000):
        start, stop = rng.randint(-25, 25), rng.randint(-25, 25)
        step = rng.choice([None, 1, 2, 3, -1, -2, -5])
        assert seq[start:stop:step] == plain[start:stop:step], (start, stop, step)
    assert seq[::-1] == plain[::-1] and list(reversed(seq)) == plain[::-1]


def test_only_the_pieces_touched_are_fetched_each_once() -> None:
    """Given a fresh sequence, then its length fetches nothing, a slice of the tail fetches
    the pieces holding it in one batch, reading them again fetches nothing, and iterating
    fetches the rest one piece at a time."""
    fetched: list[list[int]] = []
    seq = lazy(fetched)
    assert len(seq) == 20 and fetched == []
    assert seq[-6:] == [14, 15, 16, 17, 18, 19]  # the last of piece 3, piece 4, piece 5 (known)
    assert fetched == [[3, 4]]
    assert seq[-6:] == [14, 15, 16, 17, 18, 19] and seq[15] == 15 and fetched == [[3, 4]]
    assert list(seq) == list(range(20))
    assert fetched == [[3, 4], [0], [1], [2]]


def test_it_is_a_sequence_not_a_list_and_compares_as_one() -> None:
    """Then it is not a `list` (C code would read a subclass's empty storage), so
    `json.dumps` refuses it loudly; it equals the list of its items and not another; it is
    unhashable; pickling and copying give the plain list."""
    _, plain = pieces()
    seq = lazy()
    assert not isinstance(seq, list)
    with pytest.raises(TypeError):
        json.dumps(seq)
    assert seq == plain and plain == seq and seq == lazy() and seq != plain[:-1]
    assert seq != tuple(plain) and seq != [*plain[:-1], 99]
    with pytest.raises(TypeError):
        hash(seq)
    copied: object = copy.copy(seq)
    assert pickle.loads(pickle.dumps(seq)) == plain and type(copied) is list
    assert 7 in seq and seq.index(7) == 7 and seq.count(3) == 1


class Fields(FieldSource):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def names(self) -> list[str]:
        self.asked.append("*")
        return ["a", "b"]

    def value(self, name: str, convert: Any) -> Any:
        self.asked.append(name)
        return {"a": 1, "b": lazy()}[name]


def test_a_field_is_read_once_on_first_access() -> None:
    """Given lazy values over two fields, then nothing is read until they are used, the
    names once, each field once on its first access; an unknown field is a `KeyError`; they
    equal the dict of the same values, and pickle as the plain dict."""
    source = Fields()
    values = LazyValues(source)
    assert source.asked == []
    assert len(values) == 2 and "a" in values and list(values) == ["a", "b"]
    assert values["a"] == 1 and values["a"] == 1 and source.asked == ["*", "a"]
    with pytest.raises(KeyError):
        values["c"]
    assert values == {"a": 1, "b": pieces()[1]}
    assert pickle.loads(pickle.dumps(values)) == {"a": 1, "b": pieces()[1]}
    assert source.asked == ["*", "a", "b"]
