"""`page_threads`, the explorer's listing, on every backend: order, filters, cursor, refusals."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.errors import InvalidInput
from durable_graph.listing import encode_cursor
from tests.helpers import thread_record

STATUSES = ("running", "suspended", "completed", "failed")


def _seed(backend: Backend, count: int) -> list[str]:
    """`count` threads, statuses in turn, updated a second apart (two share a second)."""
    store = backend.checkpoints
    ids = []
    for i in range(count):
        second = min(i, count - 2)  # the last two share an updated_at: the id breaks the tie
        record = thread_record(f"t-{i:03d}", STATUSES[i % 4]).model_copy(
            update={"updated_at": f"2026-01-01T00:00:{second:02d}.000000Z"}
        )
        store.put_thread(record, expected_revision=None)
        ids.append(record.thread_id)
    return ids


def _walk(backend: Backend, **query: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = backend.checkpoints.page_threads(cursor=cursor, **query)  # type: ignore[arg-type]
        pages.append([r.thread_id for r in page.threads])
        cursor = page.cursor
        if cursor is None:
            return pages


def test_pages_walk_every_thread_newest_first_once(backend: Backend) -> None:
    """Given 23 threads, when paged 5 at a time, then the pages hold each thread once, newest
    update first (ties by id), every page but the last full, and the last has no cursor."""
    ids = _seed(backend, 23)
    pages = _walk(backend, limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [t for p in pages for t in p] == sorted(ids, reverse=True)


def test_pages_walk_every_thread_oldest_first_once(backend: Backend) -> None:
    """Given 23 threads of four statuses, when paged 4 at a time oldest first, then each thread
    comes once, in (updated_at, id) order across statuses."""
    ids = _seed(backend, 23)
    pages = _walk(backend, limit=4, newest_first=False)
    assert [t for p in pages for t in p] == ids and all(len(p) <= 4 for p in pages)


def test_oldest_first_by_status_for_an_inbox(backend: Backend) -> None:
    """Given threads of every status, when suspended ones are paged oldest first, then exactly
    those come back, oldest first."""
    ids = _seed(backend, 23)
    pages = _walk(backend, status="suspended", newest_first=False, limit=2)
    assert [t for p in pages for t in p] == [t for i, t in enumerate(ids) if i % 4 == 1]
    assert all(len(p) <= 2 for p in pages)


def test_prefix_search_and_status_together(backend: Backend) -> None:
    """A thread id prefix narrows the listing, with or without a status; no match is an empty
    last page."""
    _seed(backend, 23)
    assert _walk(backend, prefix="t-01", limit=4) == [
        ["t-019", "t-018", "t-017", "t-016"],
        ["t-015", "t-014", "t-013", "t-012"],
        ["t-011", "t-010"],
    ]
    assert _walk(backend, prefix="t-01", status="running") == [["t-016", "t-012"]]
    assert _walk(backend, prefix="nope") == [[]]


def test_a_moved_thread_is_listed_under_its_new_status(backend: Backend) -> None:
    """Given a running thread that then completes, the running listing no longer has it and the
    completed one does."""
    store = backend.checkpoints
    stored = store.put_thread(thread_record("mover", "running"), expected_revision=None)
    moved = stored.model_copy(update={"status": "completed", "updated_at": "2026-01-02T00:00:00Z"})
    store.put_thread(moved, expected_revision=stored.revision)
    assert _walk(backend, status="running") == [[]]
    assert _walk(backend, status="completed") == [["mover"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": encode_cursor(("a", "b"))[:-3] + "!!!"}, "cursor"),
    ],
)
def test_bad_queries_are_refused_by_field(
    backend: Backend, query: dict[str, object], field: str
) -> None:
    _seed(backend, 3)
    with pytest.raises(InvalidInput) as caught:
        backend.checkpoints.page_threads(**query)  # type: ignore[arg-type]
    assert caught.value.field == field
