"""What several commands need: the store the URI names, graphs by name, status printing."""

from __future__ import annotations

import argparse
import sys
from functools import cache
from typing import Any

from durable_graph.backend import Backend
from durable_graph.engine import Outcome
from durable_graph.erasure_record import describe_erased
from durable_graph.loader import load_graph
from durable_graph.reading import lazy_head_of
from durable_graph.runtime import CompiledGraph
from durable_graph.store_uri import deployed_workers, open_store


@cache
def backend(uri: str | None = None) -> Backend:
    """The store `--store URI` (or `$DURABLE_GRAPH_STORE`, or the embedded default) names, opened
    once per process."""
    return open_store(uri)


@cache
def graph(name: str, uri: str | None = None) -> CompiledGraph:
    """Import the application's graph `name` and bind it to the store: only the commands that
    execute or route (run, resume, replay, fork, worker) do this."""
    return load_graph(name).with_backend(backend(uri))


def graph_of(thread_id: str, uri: str | None = None) -> CompiledGraph:
    """The graph the thread runs under, imported from the application."""
    head, _ = lazy_head_of(backend(uri), thread_id)  # its graph's name: no state read
    return graph(head.graph.name, uri)


def writable(uri: str | None) -> Backend:
    """The store, for a command that writes: refused (exit 2) before anything is stored when
    the store takes no writes."""
    store = backend(uri)
    store.check_writable()
    return store


def runs_here(args: argparse.Namespace) -> bool:
    """Whether a command that commits a step also runs the thread in this process: not with
    `--detach`, nor on a store whose deployed workers run it (aws://)."""
    return not args.detach and not deployed_workers(args.store)


def print_status(doc: dict[str, Any]) -> None:
    print(f"thread   {doc['thread_id']}")
    print(f"status   {doc['status']} at step {doc['step']}")
    if doc["next"]:
        print(f"next     {', '.join(doc['next'])}")
    if doc.get("interrupt"):
        interrupt = doc["interrupt"]
        print(f"waiting  {interrupt['when']} {interrupt['node']!r}")
    if doc.get("approvals"):
        print_approvals(doc["approvals"])
    if doc.get("error"):
        error = doc["error"]
        print(f"error    {error['type']} in {error['node']!r}: {error['message']}")
    if doc.get("origin"):
        origin = doc["origin"]
        print(f"forked   from {origin['thread_id']} step {origin['step']}")
    print("values:")
    for key, value in doc["values"].items():
        text = describe_erased(value) or repr(value)
        print(f"  {key:<18} {text if len(text) < 100 else text[:97] + '...'}")


def progress(text: str) -> None:
    """One progress line for a person watching a long command: indented, on stderr (stdout
    stays the result, `--json` included), flushed at once."""
    print(f"  {text}", file=sys.stderr, flush=True)


def progress_printer(enabled: bool) -> Any:
    """A progress line per committed step, and about every 5% of a fan-out's tasks, on stderr,
    for people watching long runs."""

    def show(outcome: Outcome) -> None:
        if outcome.progress is not None:
            done, total = outcome.progress
            if done % max(1, total // 20) == 0:  # about every 5% of a fan-out
                progress(f"tasks {done:>{len(str(total))}}/{total} done")
            return
        checkpoint = outcome.checkpoint
        if checkpoint is None or outcome.kind != "committed":
            return
        nodes = ", ".join(checkpoint.nodes) or "-"
        progress(
            f"step {checkpoint.step:>3}  {nodes:<24} -> {checkpoint.status:<9} "
            f"({checkpoint.duration_ms:.1f} ms)"
        )

    return show if enabled else None


def print_approvals(doc: dict[str, Any]) -> None:
    """Who approved toward a rule (`approval_record.approvals_of`, or the suspended head's
    tally): one line each, with how the identity was established and by which route."""
    done = doc["approvals"]
    who = ", ".join(f"{a['actor']['id']} ({a['at']})" for a in done)
    print(f"approved {len(done)} of {doc['required']}: {who}")
    for a in done:
        how = a.get("method") or "not recorded"
        print(
            f"  {a.get('decision', 'approve')} by {a['actor']['kind']}:{a['actor']['id']} "
            f"(identity: {how}; via {a.get('via') or '-'}) at {a['at']}"
        )
    if doc.get("chained") is False:
        print("  (written before approvals were hashed: all but the step's actor are in the "
              "store's approvals# record, outside the hash chain)")  # fmt: skip


def exit_code_for(status: str) -> int:
    return 1 if status == "failed" else 0
