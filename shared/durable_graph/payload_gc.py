"""The payload collector: delete the payload objects no thread needs any more (mark and sweep),
whoever left them and however (`docs/record-format.md` §12, *Storage reclamation*).

`orphans.py`, `disposal.py` and `leftovers.py` delete what a writer knows it leaves: a lost
append's chunks, the segments a merge retired. What a writer could not write down stays: the
chunks and segments of a step whose process died before its append or before it let go, a unit
of work that failed after its puts, a crash between a commit and its deletes or leftover, S3's
gap between an erasure's check and its delete. `collect` finds all of them the same way:

1. **Cutoff.** `cutoff = now - grace`, taken first. `grace` (default `GRACE`, one hour) must
   cover the longest a writer takes from putting an object to committing the record that names
   it (sealing puts a step's chunks right before its one conditional write; a node's `ctx.save`
   is put while the node runs, so a node that runs longer than the grace between saving an
   object and its step's commit needs a longer grace).
2. **Mark** (`gc_marks.mark`): every object some thread needs, read from the whole store.
3. **Sweep.** The payload store is listed page by page (`PayloadStore.list_objects`); each
   object that is not marked and whose stamp is before the cutoff is deleted with
   `PayloadStore.delete_idle(..., since=cutoff)`: the store deletes it only if it was not put
   at the cutoff or later, as one step against concurrent puts where it can. Every payload
   store stamps an object at each put, a put of bytes already there included
   (`ports.payload_store.StampedPayloads`), so an object a writer put again after the mark
   (a step storing bytes some dead object already held, about to commit a record naming it)
   is never deleted.

So an object is deleted only when no record, snapshot or fan-out row read after the cutoff
names it and nobody put it since the cutoff. A record committed after the mark started names
only objects put since the cutoff (a step shorter than the grace) or objects older records name
too (which the mark read). What is never deleted: anything a thread needs (every record's chunks
and lists, `$payload` and `ctx.save` objects, every snapshot a row names and its segments, the
fan-out rows' chunks), an object stamped after the cutoff, and anything at all when some thread
could not be read (`gc_marks.MarkIncomplete`, `Collected.stopped`).

Run it from any process that may delete payloads: `durable-graph gc` (`--dry-run` lists what it
would delete), or the AWS sweeper's `gc` job (`backends/aws/sweeper.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.errors import InvalidInput
from durable_graph.gc_marks import MarkIncomplete, Marks, mark
from durable_graph.ports.payload_store import StoredObject
from durable_graph.sealed_payloads import raw_payloads

GRACE = timedelta(hours=1)
LIST_PAGE = 1000  # objects per listing request (S3 lists at most 1,000 keys at once)


@dataclass
class Collected:
    """What one collection found and did. Objects and bytes: `listed` (the whole store),
    `unreferenced` (not marked, stamped before the cutoff as listed), `recent` (not marked but
    stamped after the cutoff: left for a later run), `deleted` (with `dry_run`: what would
    be), and `kept` (put again since the cutoff when the delete looked). `doomed`: the digests
    deleted. `stopped`: why the run stopped early (a thread that could not be read, out of
    time), else None."""

    dry_run: bool = False
    cutoff: str = ""
    threads: int = 0
    marked: int = 0
    listed: int = 0
    listed_bytes: int = 0
    unreferenced: int = 0
    unreferenced_bytes: int = 0
    recent: int = 0
    recent_bytes: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    kept: int = 0
    stopped: str | None = None
    unreadable: dict[str, str] = field(default_factory=dict)
    doomed: list[str] = field(default_factory=list)  # digests deleted (or, dry, to delete)

    def as_json(self, *, digests: bool = True) -> dict[str, object]:
        """As JSON; without `doomed` unless `digests` (a Lambda's answer stays small)."""
        found = asdict(self)
        if not digests:
            del found["doomed"]
        return found


Progress = Callable[[str, Collected], None]  # (phase: "mark" | "sweep", what is known so far)


def collect(
    backend: Backend,
    *,
    grace: timedelta = GRACE,
    dry_run: bool = False,
    clock: Clock | None = None,
    progress: Progress | None = None,
    page: int = LIST_PAGE,
    time_left: Callable[[], float] | None = None,
    reserve: float = 0.0,
) -> Collected:
    """Delete the payload objects no thread needs that were put before `now - grace` (module
    docstring); with `dry_run`, only say which. `progress(phase, collected)` after each page of
    threads marked and of objects swept. With `time_left` (seconds), it stops once fewer than
    `reserve` are left: while marking, having deleted nothing; while sweeping, having deleted
    what it did (the next run starts again). Raises `InvalidInput` for a grace that is not
    positive, or when this process may not delete payloads."""
    if grace <= timedelta(0):
        raise InvalidInput(f"the grace period must be positive, not {grace}", field="grace")
    if not dry_run and not backend.deletes_payloads:
        raise InvalidInput(
            "this process may not delete payload objects (deletes_payloads is off): run the "
            "collector where it may, or with --dry-run",
            field="store",
        )
    clock = clock or SystemClock()
    cutoff = clock.now() - grace  # before the mark: see the module docstring
    done = Collected(dry_run=dry_run, cutoff=iso(cutoff))

    def out_of_time() -> bool:
        return time_left is not None and time_left() <= reserve

    def marking(marks: Marks) -> None:
        done.threads, done.marked = marks.threads, len(marks.live)
        if progress is not None:
            progress("mark", done)
        if out_of_time():
            raise MarkIncomplete(f"out of time after marking {marks.threads} thread(s)")

    try:
        marks = mark(backend, clock, marking)
    except MarkIncomplete as exc:
        done.stopped = f"{exc}: nothing deleted"
        return done
    done.threads, done.marked, done.unreadable = marks.threads, len(marks.live), marks.unreadable
    if marks.unreadable:
        done.stopped = (
            f"{len(marks.unreadable)} thread(s) could not be read, so what they need is "
            "unknown: nothing deleted (first: "
            + "; ".join(f"{t}: {why}" for t, why in list(marks.unreadable.items())[:3])
            + ")"
        )
        return done
    payloads = raw_payloads(backend.payloads)
    after = ""
    while True:
        if out_of_time():
            done.stopped = f"out of time after {done.listed} object(s) listed"
            return done
        listed = payloads.list_objects(after, page)
        if not listed:
            return done
        after = listed[-1].sha256
        doomed = _sweep_page(listed, marks.live, cutoff, done)
        if doomed:
            digests = [o.sha256 for o in doomed]
            gone = set(payloads.delete_idle(digests, cutoff, dry_run=dry_run))
            done.deleted += len(gone)
            done.deleted_bytes += sum(o.size for o in doomed if o.sha256 in gone)
            done.kept += len(doomed) - len(gone)
            done.doomed += sorted(gone)
        if progress is not None:
            progress("sweep", done)


def _sweep_page(
    listed: list[StoredObject], live: set[str], cutoff: datetime, done: Collected
) -> list[StoredObject]:
    """Count a page of the listing; return its objects that may go."""
    doomed = []
    for stored in listed:
        done.listed += 1
        done.listed_bytes += stored.size
        if stored.sha256 in live:
            continue
        if stored.stored_at >= cutoff:
            done.recent += 1
            done.recent_bytes += stored.size
            continue
        done.unreferenced += 1
        done.unreferenced_bytes += stored.size
        doomed.append(stored)
    return doomed


__all__ = ["GRACE", "LIST_PAGE", "Collected", "Progress", "collect"]
