"""The payload store's listing and batch delete (`PayloadStore.list_objects`, `delete_idle`),
what the payload collector (`payload_gc.py`) stands on, on every backend."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.ports.payload_store import StoredObject
from durable_graph.sealed_payloads import raw_payloads
from tests.conformance.test_lost_appends import stored


@pytest.fixture
def clock() -> ManualClock:
    """Starts at the real time: S3 lists an object's `LastModified`, the bucket's clock."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def listed(backend: Backend, page: int) -> list[StoredObject]:
    """The whole store, `page` objects per request, following the cursor."""
    found: list[StoredObject] = []
    after = ""
    while batch := raw_payloads(backend.payloads).list_objects(after, page):
        assert len(batch) <= page
        found += batch
        after = batch[-1].sha256
    return found


def test_the_listing_walks_every_object_in_digest_order_with_its_size_and_stamp(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 23 objects of different sizes
    When the store is listed 5 at a time, each page after the last digest of the one before
    Then every object is listed once, in digest order, with its size, stamped about when it
    was put; listing after the last digest gives nothing."""
    datas = [f"object {i} ".encode() * (i + 1) for i in range(23)]
    for data in datas:
        backend.payloads.put(data, "application/octet-stream")

    found = listed(backend, 5)

    sizes = {hashlib.sha256(d).hexdigest(): len(d) for d in datas}
    assert [o.sha256 for o in found] == sorted(sizes)
    assert {o.sha256: o.size for o in found} == sizes
    for one in found:
        assert one.stored_at.tzinfo is not None
        assert abs(one.stored_at - clock.now()) < timedelta(minutes=1)
    assert raw_payloads(backend.payloads).list_objects(found[-1].sha256, 5) == []


def test_delete_idle_deletes_what_was_not_put_since_and_keeps_a_put_again(
    backend: Backend, clock: ManualClock
) -> None:
    """Given three objects put an hour ago, one of which is put again now (a writer storing
    the same bytes: the store stamps it anew)
    When the three, and a digest never stored, are deleted if idle since half an hour ago
    Then the two idle ones are deleted (returned, gone from reads and from the listing), the
    one put again stays readable, and the missing one is no error."""
    old, also_old, again = b"old bytes" * 50, b"also old" * 70, b"stored again" * 90
    refs = [backend.payloads.put(d, "application/octet-stream") for d in (old, also_old, again)]
    clock.advance(3600)
    backend.payloads.put(again, "application/octet-stream")
    ghost = hashlib.sha256(b"never stored").hexdigest()

    digests = [r.sha256 for r in refs] + [ghost]
    deleted = raw_payloads(backend.payloads).delete_idle(
        digests, clock.now() - timedelta(minutes=30)
    )

    assert sorted(deleted) == sorted([refs[0].sha256, refs[1].sha256])
    assert not stored(backend, refs[0]) and not stored(backend, refs[1])
    assert stored(backend, refs[2])
    assert [o.sha256 for o in listed(backend, 1000)] == [refs[2].sha256]
    assert raw_payloads(backend.payloads).delete_idle([], clock.now()) == []


def test_delete_idle_takes_a_batch_bigger_than_a_listing_page(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 40 idle objects, when they are deleted in one batch, then all go and the store
    lists nothing."""
    refs = [backend.payloads.put(f"batch {i}".encode() * 20) for i in range(40)]
    clock.advance(7200)

    deleted = raw_payloads(backend.payloads).delete_idle([r.sha256 for r in refs], clock.now())

    assert sorted(deleted) == sorted(r.sha256 for r in refs)
    assert listed(backend, 7) == []
    assert not any(stored(backend, r) for r in refs)
