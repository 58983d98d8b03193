"""Canonical JSON (RFC 8785, via the maintained `rfc8785` package) and the digests built on it.

One function serialises for hashing; the writer and the verifier both call it, so they cannot
disagree about key order, number formatting or escaping.

Values of the common shapes (`_integral_floats` says which) are written by `orjson`, whose
output for them is byte for byte the standard library's compact, key-sorted form, which is in
turn RFC 8785's for them; it writes them some 20-40 times faster than the standard library's C
encoder (which sorts keys with a Python call per object), and encoding was a tenth of an
approval thread's CPU. The tests hold all three to the same bytes on random values.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import rfc8785

from durable_graph.errors import SerializationError

_END = object()  # an exhausted iterator's sentinel (`json_size_within`)

ZERO_HASH = "0" * 64


def check_json(value: Any, path: str = "$") -> None:
    """Fail with the exact path of the first value JSON cannot hold (sets, objects, NaN...)."""
    kind = type(value)  # the exact JSON types first: a check of each is a pointer comparison
    if kind is str or value is None or kind is int or kind is bool:
        return
    if isinstance(value, (bool, str, int)):  # a subclass (an enum of strings...)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{path}: {value!r} is not a finite number", field=path)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"{path}: key {key!r} is not a string", field=path)
            check_json(item, f"{path}.{key}")
        return
    raise SerializationError(
        f"{path}: value of type {type(value).__name__} is not JSON-serialisable "
        "(state must hold only JSON values; keep live objects in node-local variables)",
        field=path,
    )


class _NotPlain(Exception):
    """The value holds something only the full RFC 8785 encoder writes exactly."""


_SAFE_INTEGER = 2**53
# One encoder for every call (`json.dumps` with options builds a new one each time); its
# `encode` runs the C encoder.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_encode_text = _ENCODER.encode
# Sorted keys; a subclass, dataclass or date is not written (it raises, and the caller falls
# back): only the exact JSON types `_integral_floats` admits reach it.
_ORJSON = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
# For a value whose free-form parts were checked (`plain_json`): the rest is typed fields
# (strings, small integers, nested records), and an integer past 2^53 in one of those still
# raises here rather than being written.
_CHECKED = _ORJSON | orjson.OPT_STRICT_INTEGER


def _with_integers(value: Any) -> Any:
    """A copy of a value `_integral_floats` accepted, its integral floats written as integers
    (as ECMAScript prints them); nothing else is checked again here."""
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if type(value) is list or type(value) is tuple:
        return [_with_integers(item) for item in value]
    if type(value) is dict:
        return {key: _with_integers(item) for key, item in value.items()}
    return value


def _integral_floats(value: Any) -> bool:
    """Whether `value` is written by the standard library's encoder byte for byte as RFC 8785
    writes it (else `_NotPlain`): keys ASCII (so code-point order is UTF-16 order), integers
    within ±2^53, floats either integral below 2^53 or in [1e-4, 1e16) (where `repr` and
    ECMAScript print the same shortest digits without an exponent). True when it holds
    integral floats, which must then be written as integers (`_with_integers`)."""
    found = False
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_SAFE_INTEGER < item < _SAFE_INTEGER:
                raise _NotPlain
        elif kind is float:
            if item.is_integer():
                # Below 2^53 `int()` prints the same digits as ECMAScript; from 2^53 on the
                # exact integer and the shortest round-trip digits differ (2^53 as a float
                # printed "9007199254740992.0" here before): rfc8785 writes those.
                if abs(item) >= _SAFE_INTEGER:
                    raise _NotPlain
                found = True
            elif not 1e-4 <= abs(item) < 1e16:
                raise _NotPlain
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    raise _NotPlain
            stack.extend(item.values())
        else:
            raise _NotPlain
    return found


def plain_json(parts: list[Any], keys: Iterable[str] = ()) -> bool:
    """Whether `parts` hold only what `orjson` writes exactly as RFC 8785 and the standard
    library do (`_integral_floats`, and no integral float: those are written differently by
    each), and `keys` are ASCII. A typed record checks its free-form parts (user values, task
    arguments...) with this once, and then has its whole body written without the walk
    (`canonical_bytes(..., plain=True)`): the walk over every string and digest of a record
    was most of the time its encoding took."""
    try:
        return "".join(keys).isascii() and not _integral_floats(parts)
    except _NotPlain:
        return False


def canonical_bytes(value: Any, *, plain: bool = False) -> bytes:
    """RFC 8785 canonical form: sorted keys, no white space, UTF-8, ECMAScript numbers.

    Values of the common shapes go through `orjson`, which writes exactly the same bytes for
    them (`_integral_floats` says which; tests compare the two on random values); anything else
    (non-ASCII keys, big integers, floats with exponents, lone surrogates, nesting deeper than
    orjson's 254 levels) through the `rfc8785` package. `plain`: the caller has checked
    `value` with `plain_json` but for its typed fields (strings, safe integers, records of
    those), so the walk is skipped.
    """
    if plain or type(value) is str:  # a string (most state values) needs no walk either
        # `try`, not `contextlib.suppress`: its three Python calls cost more than the walk.
        try:
            return orjson.dumps(value, option=_CHECKED)
        except orjson.JSONEncodeError:  # a lone surrogate, a big integer: written below
            pass
    try:
        written = _with_integers(value) if _integral_floats(value) else value
        return orjson.dumps(written, option=_ORJSON)
    except (_NotPlain, orjson.JSONEncodeError, RecursionError):
        pass
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as exc:  # rfc8785 refuses it: name the exact path of the bad value
        check_json(value)
        raise SerializationError(f"$: cannot canonicalise: {exc}", field="$") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    return sha256_hex(canonical_bytes(value))


def json_size_within(value: Any, limit: int) -> bool:
    """Whether `value`'s JSON is about `limit` bytes or less, found without serialising a big
    value whole: the walk stops as soon as the running size passes `limit`, so it costs
    O(min(size, limit)) whatever the value weighs (a state of 1,000 strings of 100 KB each
    stops at the first)."""
    budget = limit
    # Iterators, not items: a list of 10,000 items is not copied onto the stack to look at
    # its first few.
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        item: Any = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        kind = type(item)
        if kind is not str and kind is not dict and kind is not list:
            # A subclass (an enum of strings, an OrderedDict) as its base; the exact types
            # skip this (pointer comparisons, where `isinstance` is a call each).
            kind = str if isinstance(item, str) else dict if isinstance(item, dict) else kind
        if kind is str:
            budget -= len(item) + 2
        elif kind is dict:
            budget -= 2 + 4 * len(item)  # separators, and at least a key's quotes per entry
            stack.append(iter(item.values()))
        elif kind is list or isinstance(item, (list, tuple)):
            budget -= 2 + 4 * len(item)
            stack.append(iter(item))
        else:
            budget -= 8
        if budget < 0:
            return False
    return True


def compact_json(value: Any, *, plain: bool = False) -> str:
    """Storage form (not for hashing): compact, keys sorted for stable diffs.

    The standard library's encoder writes it; `orjson` writes the same text, faster, for the
    values `_integral_floats` admits (a stored row, a record), so only those go to it.
    `plain`: as for `canonical_bytes`."""
    if plain:
        try:
            return orjson.dumps(value, option=_CHECKED).decode()
        except orjson.JSONEncodeError:
            pass
    try:
        _integral_floats(value)
        return orjson.dumps(value, option=_ORJSON).decode()
    except (_NotPlain, orjson.JSONEncodeError, RecursionError):
        return _encode_text(value)
