"""PayloadStore contract, on every backend."""

from __future__ import annotations

import hashlib

import pytest

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted
from durable_graph.payload_batches import get_many


def test_content_addressed_round_trip(backend: Backend) -> None:
    data = b"x" * 100_000
    ref = backend.payloads.put(data, "text/plain")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert backend.payloads.get(ref) == data


def test_identical_bytes_get_the_same_ref(backend: Backend) -> None:
    first = backend.payloads.put(b"same bytes")
    second = backend.payloads.put(b"same bytes")
    assert first.sha256 == second.sha256
    assert first.uri == second.uri


def test_missing_payload_is_reported_not_invented(backend: Backend) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    ghost = PayloadRef(uri="x", sha256=digest, size=12)
    with pytest.raises(PayloadCorrupted):
        backend.payloads.get(ghost)


def test_delete_destroys_the_bytes_once_and_leaves_others(backend: Backend) -> None:
    """Given two payloads, when one is deleted (erasure's one exception to write-once), then
    reading it reports it missing, deleting it again says there was nothing, and the other is
    untouched."""
    erased = backend.payloads.put(b"personal data")
    kept = backend.payloads.put(b"someone else's data")
    assert backend.payloads.delete(erased) is True
    with pytest.raises(PayloadCorrupted):
        backend.payloads.get(erased)
    assert backend.payloads.delete(erased) is False
    assert backend.payloads.get(kept) == b"someone else's data"


def test_many_payloads_read_at_once_in_order_each_checked(backend: Backend) -> None:
    """Given several payloads, then reading them together (`payload_batches.get_many`: one
    query on PostgreSQL, a loop on a folder, a few at a time on S3) returns each one's bytes in
    the order asked, a repeated ref included; a missing one among them is reported."""
    datas = [f"segment {i}".encode() * 100 for i in range(12)]
    refs = [backend.payloads.put(d, "application/octet-stream") for d in datas]
    order = [*reversed(refs), refs[3]]
    assert get_many(backend.payloads, order) == [*reversed(datas), datas[3]]
    ghost = PayloadRef(uri="x", sha256=hashlib.sha256(b"never stored").hexdigest(), size=12)
    with pytest.raises(PayloadCorrupted):
        get_many(backend.payloads, [refs[0], ghost, refs[1]])
    assert get_many(backend.payloads, []) == []
