"""Long threads: does a step cost what it changed, or what the thread has accumulated?

Three parts (and `grow`, run with them by default), each printing a table with the budget
(DESIGN issue "a step costs what it changed") beside every ratio and PASS/MISS text.
Nothing is asserted: the exit code is 0 unless the bench itself crashes. Every size runs in
its own subprocess, under a time cap, so a slow or failing engine shows as a row ("failed at
turn N: <error>", "capped at turn N") instead of a hang.

1. chat — ONE thread; each turn appends one ~1 KB message (`{"role", "content"}`, JSON-encoded
   1,024 bytes) to `messages: Annotated[list[dict], operator.add]`. The chat is a loop graph:
   node `turn` appends a message and a conditional edge loops back to `turn` until the counter
   reaches N; one `invoke` runs N steps (past the default recursion_limit of 25: the bench
   lifts it). Each size N runs its own thread. Measured:
     - step ms: median time between consecutive calls of `turn` (commit + schedule + node) over
       the last 20 turns up to N (a thread shorter than that, N=10, is run again as new N-turn
       threads until 20 intervals are pooled); budget at the largest N <= 1.5x the smallest;
       a throwaway 30-turn thread in another store warms the process up first;
     - get_state ms: the head read by a cold reader (a fresh backend object on the same SQLite
       file, so no cache; opening it is not timed) with its values used, median of 9, wall
       and CPU time; budget <= 3x. This is the budget's number;
     - meta ms: the same call when only what the head row says is used (`next`, `config`,
       `metadata`, `tasks`): the head snapshot reads its state on first use of `values`, so
       this is one row read. Not the budget (a reader that uses the values pays get_state ms);
     - rows / payloads / requests: checkpoint rows, payload objects and payload requests of one
       cold get_state with its values used, counted by wrapping the real stores;
     - lazy ms: the head read by a cold reader with `get_state(..., lazy=True)`, of which
       `len(messages)` and `messages[-20:]` are used (what a chat shows): the snapshot
       document, the newest segment and the rows since the snapshot are read, not every
       message. Beside it the eager get_state and meta of the same run; the 3x budget is
       held with the lazy read (an eager read that uses every value materialises 10 MB of
       messages at 10,000 turns: `docs/record-format.md` §12);
     - history ms: `get_state_history(limit=10)` by a cold reader (no budget);
     - stored: every file under the store's folder (SQLite file(s) + payload folder) after
       close, against the raw bytes appended (N x 1 KB); budget <= 2x raw.
   Baseline: the same loop graph on LangGraph + `SqliteSaver`, `durability="sync"`, same
   measurements, as far as it gets within `--langgraph-cap-seconds` (and `--langgraph-max-mb`
   of database) per size.
   grow — beside it: a list and a dict, each grown one ~1 KB entry a step (an `operator.add`
   list, and a dict reducer adding one key a step) in a thread of N steps (`--steps`, default
   10, 1,000, 10,000); the payload objects and requests of a cold `get_state` of the head with
   its values used (both kept in snapshot segments merged in runs: O(log n) objects), and its
   median time. No budget (issue 8 leftovers: a dict's segments were one object per 64 steps);
   `--previous` runs another checkout's beside it, interleaved.
2. fanout — a `split` node makes N documents (~500 bytes each), a conditional edge sends one
   `classify` task per document (`Send`), `aggregate` fans in; embedded SQLite backend, inline
   runner (`invoke`). Cost per document = wall time / N; budget at the largest N <= 1.5x the
   smallest. Baseline: the same map-reduce on LangGraph + SqliteSaver (sync), capped.
3. aws — the same fan-out on moto through the real worker path (bench/aws_requests.py's request
   counting with botocore hooks; the SQS event source mapping emulated with batch size 1).
   DynamoDB + S3 requests per fan-out task (everything from `start` to the thread settling,
   divided by N); budget <= 4 per task and independent of N (read here as: largest N within
   1.10x of the smallest). moto runs under `bench/moto_scaling.py`, which removes moto's own
   O(items) work per request (a table deep-copied per transaction, the queue scanned per
   send), so 10,000 tasks finish in minutes; the requests counted are the same.
4. aws-chat (only when named) — the chat of part 1 on DynamoDB + S3 (moto) by the AWS worker's
   backend (no payload deletes: the segments its merges retire are left for the sweeper), then
   one sweeper pass: stored bytes x raw before and after it, beside the embedded store
   (`bench/aws_chat_storage.py`); budget <= 2x raw after the sweep.

    PYTHONPATH=. .venv/bin/python bench/long_threads.py            # all parts, default sizes
    PYTHONPATH=. .venv/bin/python bench/long_threads.py --quick    # small and fast
    PYTHONPATH=. .venv/bin/python bench/long_threads.py chat --turns 10,100,1000
    PYTHONPATH=. .venv/bin/python bench/long_threads.py grow --steps 10,1000,10000 --previous ../old
    PYTHONPATH=. .venv/bin/python bench/long_threads.py fanout --docs 100,1000
    PYTHONPATH=. .venv/bin/python bench/long_threads.py aws --aws-tasks 100,2000,10000
    PYTHONPATH=. .venv/bin/python bench/long_threads.py chat --previous /path/to/old/checkout
    PYTHONPATH=. .venv/bin/python bench/long_threads.py aws-chat --turns 1000,10000
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import itertools
import json
import operator
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

from pydantic import BaseModel, Field

from durable_graph import END, START, CompiledGraph, Send, StateGraph

# A long thread runs past LangGraph's default recursion_limit (25 steps per invoke) on purpose.
NO_LIMIT = {"recursion_limit": 10**9}

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FANOUT_GRAPH_PATH = "bench.long_threads:fanout_graph"
WINDOW = 20  # step intervals per window
WARMUP_TURNS = 30  # a throwaway thread in another store first: imports, caches, first writes
COLD_REPEATS = 9  # cold reads per measure (median)
HARNESS_PARTS = ("chat-dg", "grow-dg")  # with --previous: that checkout under this harness

STEP_BUDGET = 1.5
GET_STATE_BUDGET = 3.0
STORED_BUDGET = 2.0
PER_DOC_BUDGET = 1.5
AWS_PER_TASK_BUDGET = 4.0
AWS_INDEPENDENCE = 1.10

# ---------------------------------------------------------------- data

_WORDS: list[str] = []


def words() -> list[str]:
    if not _WORDS:
        rng = random.Random(42)
        letters = "abcdefghijklmnopqrstuvwxyz"
        _WORDS.extend(
            "".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(3000)
        )
    return _WORDS


def text_of(rng: random.Random, prefix: str, size: int) -> str:
    """Text-like: random words (compressible like chat, but not trivially)."""
    out = prefix + " " + " ".join(rng.choices(words(), k=size // 4))
    while len(out) < size:
        out += " " + " ".join(rng.choices(words(), k=16))
    return out[:size]


def chat_messages(turns: int, size: int) -> list[dict[str, str]]:
    """One message per turn, each `size` bytes when JSON-encoded."""
    rng = random.Random(7)
    out = []
    for turn in range(turns):
        role = "user" if turn % 2 == 0 else "assistant"
        overhead = len(json.dumps({"role": role, "content": ""}))
        out.append({"role": role, "content": text_of(rng, f"turn {turn}:", size - overhead)})
    return out


DOC_BYTES = 500
LABELS: dict[str, tuple[str, ...]] = {
    "invoice": ("invoice", "amount due", "payment", "vat"),
    "contract": ("agreement", "party", "term", "clause"),
    "complaint": ("complaint", "refund", "broken"),
}
_HINTS = ["Invoice, amount due, payment.", "Agreement between the party.", "Complaint: broken."]


def document_text(index: int, size: int = DOC_BYTES) -> str:
    rng = random.Random(index)
    hint = _HINTS[index % 3] if index % 4 else "Memo."
    return text_of(rng, f"doc {index}: {hint}", size)


def label_of(text: str) -> str:
    lowered = text.lower()
    scores = {label: sum(lowered.count(w) for w in ws) for label, ws in LABELS.items()}
    best = max(scores, key=lambda label: (scores[label], label))
    return best if scores[best] > 0 else "other"


# ---------------------------------------------------------------- the fan-out graph


class FanState(BaseModel):
    count: int = 0
    doc_bytes: int = DOC_BYTES
    documents: list[str] = Field(default_factory=list)
    results: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)
    totals: dict[str, int] = Field(default_factory=dict)


_PROGRESS: dict[str, Any] = {"file": None, "done": 0}


def _tick() -> None:
    _PROGRESS["done"] += 1
    if _PROGRESS["file"] and _PROGRESS["done"] % 25 == 0:
        Path(_PROGRESS["file"]).write_text(str(_PROGRESS["done"]))


def split(state: FanState) -> dict[str, Any]:
    return {"documents": [document_text(i, state.doc_bytes) for i in range(state.count)]}


def fan_out(state: FanState) -> list[Send] | list[str]:
    sends = [Send("classify", {"id": i, "text": d}) for i, d in enumerate(state.documents)]
    return sends or ["aggregate"]


def classify(task: dict[str, Any]) -> dict[str, Any]:
    _tick()
    text = str(task["text"])
    return {"results": [{"id": task["id"], "label": label_of(text), "words": len(text.split())}]}


def aggregate(state: FanState) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for r in state.results:
        totals[r["label"]] = totals.get(r["label"], 0) + 1
    return {"totals": dict(sorted(totals.items()))}


fanout_builder = StateGraph(FanState)
fanout_builder.add_node("split", split)
fanout_builder.add_node("classify", classify)
fanout_builder.add_node("aggregate", aggregate)
fanout_builder.add_edge(START, "split")
fanout_builder.add_conditional_edges("split", fan_out)
fanout_builder.add_edge("classify", "aggregate")
fanout_builder.add_edge("aggregate", END)
fanout_graph = fanout_builder.compile(name=FANOUT_GRAPH_PATH)

# ---------------------------------------------------------------- helpers


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def cold_ms(
    cold: Callable[[Callable[[Any], Any]], tuple[float, Any]],
    read: Callable[[Any], Any],
    repeats: int = 5,
) -> float:
    """Median of `repeats` cold reads, each on a freshly opened store."""
    return statistics.median(cold(read)[0] for _ in range(repeats))


Stamp = tuple[float, float]  # (wall clock, this process's CPU time) at a call of `turn`


def stamp() -> Stamp:
    return time.perf_counter(), time.process_time()


def window(stamps: list[Stamp]) -> list[Stamp]:
    """Intervals (wall, CPU) between consecutive node calls over the last WINDOW turns, in ms."""
    spans = [((b[0] - a[0]) * 1000, (b[1] - a[1]) * 1000) for a, b in itertools.pairwise(stamps)]
    return spans[-WINDOW:]


def window_ms(
    stamps: list[Stamp], run_again: Callable[[int], list[Stamp]] | None
) -> tuple[float, float] | None:
    """Medians (wall, CPU) of the window; a thread shorter than the window (N=10) is run
    again, as new threads of N turns, until WINDOW intervals are pooled (the reference row is
    less noisy)."""
    pooled = window(stamps)
    repeat = 0
    while run_again and pooled and len(pooled) < WINDOW and repeat < WINDOW:
        repeat += 1
        pooled += window(run_again(repeat))
    if not pooled:
        return None
    return statistics.median(w for w, _ in pooled), statistics.median(c for _, c in pooled)


def failure_reason(exc: Exception) -> str:
    """The recorded error of a failed thread when the exception carries it (`ThreadFailed`,
    where the engine has it), else the exception itself."""
    error, step = getattr(exc, "error", None), getattr(exc, "step", None)
    if error is not None and hasattr(error, "type") and hasattr(error, "message"):
        where = f"at step {step}: " if step is not None else ""
        return f"{where}{error.type}: {error.message}"
    return f"{type(exc).__name__}: {exc}"


def short(error: str, limit: int = 150) -> str:
    one = " ".join(error.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# ---------------------------------------------------------------- children: chat


class Chat(BaseModel):
    messages: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)
    turn: int = 0
    stop_at: int = 0


def chat_durable_graph(spec: dict[str, Any]) -> dict[str, Any]:
    from durable_graph.backends.local import local_backend

    n, root = int(spec["n"]), Path(spec["root"])
    texts = chat_messages(max(n, WARMUP_TURNS), int(spec["message_bytes"]))
    deadline = time.perf_counter() + float(spec["cap"])
    stamps: list[Stamp] = []
    capped = False

    def turn(state: Chat) -> dict[str, Any]:
        stamps.append(stamp())
        return {"messages": [texts[state.turn]], "turn": state.turn + 1}

    def again(state: Chat) -> str:
        nonlocal capped
        if state.turn >= state.stop_at:
            return END
        if time.perf_counter() > deadline:
            capped = True
            return END
        return "turn"

    builder = StateGraph(Chat)
    builder.add_node("turn", turn)
    builder.add_edge(START, "turn")
    builder.add_conditional_edges("turn", again, {"turn": "turn", END: END})
    graph = builder.compile(name="bench.long_threads:chat")
    warm = local_backend(root.parent / "warm")
    graph.with_backend(warm).invoke({"stop_at": WARMUP_TURNS}, NO_LIMIT, thread_id="warm")
    warm.close()
    stamps.clear()
    empty_dir = root.parent / "empty"
    local_backend(empty_dir).close()
    backend = local_backend(root)
    app = graph.with_backend(backend)
    out: dict[str, Any] = {"n": n, "status": "ok", "error": "", "empty": folder_bytes(empty_dir)}
    started = time.perf_counter()
    try:
        app.invoke({"stop_at": n}, NO_LIMIT, thread_id="chat")
    except Exception as exc:  # the engine raising is a result, not a bench crash
        out.update(status="failed", error=failure_reason(exc))
    out["seconds"] = time.perf_counter() - started
    # Peak memory of the run (what a process that ran the whole thread held at most; the
    # records of past steps kept alive made it grow with steps x state).
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.close()

    cpus: list[float] = []  # the CPU ms of each cold read, in order

    def cold(read: Callable[[CompiledGraph], Any]) -> tuple[float, Any]:
        """Time `read` on a fresh backend object (opened before the clock starts); its CPU
        time (this process's, every thread) goes to `cpus`."""
        fresh = app.with_backend(local_backend(root))
        try:
            started, cpu = time.perf_counter(), time.process_time()
            value = read(fresh)
            cpus.append((time.process_time() - cpu) * 1000)
            return (time.perf_counter() - started) * 1000, value
        finally:
            fresh.backend.close()

    head = cold(touch_values)[1]  # values used while the store is open
    reached = int(head.values.get("turn", 0))
    if out["status"] == "ok" and head.status == "failed" and head.error is not None:
        # an engine whose `invoke` returns the values of a failed thread instead of raising
        out.update(status="failed", error=f"{head.error.type}: {head.error.message}")
    elif out["status"] == "ok" and capped:
        out.update(status="capped", error=f"capped at turn {reached} ({spec['cap']:g} s cap)")
    assert len(head.values["messages"]) == reached
    out["reached"] = reached
    out["failed_turn"] = len(stamps)
    again_backend = local_backend(root.parent / "again")

    def run_again(repeat: int) -> list[Stamp]:
        stamps.clear()
        graph.with_backend(again_backend).invoke(
            {"stop_at": n}, NO_LIMIT, thread_id=f"again-{repeat}"
        )
        return stamps

    # only a thread that reached N is run again (a failed or capped one would fail again)
    medians = window_ms(stamps, run_again if reached == n else None)
    out["step_ms"], out["step_cpu_ms"] = medians if medians else (None, None)
    again_backend.close()
    # CPU time beside wall time: on a loaded machine the wall time of a read is mostly waiting
    # for a core, and the CPU time is the steadier of the two (as for steps).
    out["get_state_ms"] = cold_ms(cold, touch_values, COLD_REPEATS)
    out["get_state_cpu_ms"] = statistics.median(cpus[-COLD_REPEATS:])
    out["meta_ms"] = cold_ms(cold, touch_metadata, COLD_REPEATS)
    out["meta_cpu_ms"] = statistics.median(cpus[-COLD_REPEATS:])
    if "lazy" in inspect.signature(app.get_state).parameters:  # not in a --previous checkout
        out["lazy_ms"] = cold_ms(cold, touch_lazy, COLD_REPEATS)
        out["lazy_cpu_ms"] = statistics.median(cpus[-COLD_REPEATS:])
        lazy = counted_read(app, root, touch_lazy)
        out.update({f"lazy_{key}": value for key, value in lazy.items()})
    out["history_ms"] = cold_ms(cold, lambda g: g.get_state_history("chat", limit=10))
    out.update(cold_reads(app, root))
    out["stored"] = folder_bytes(root)
    out["raw"] = sum(len(json.dumps(t).encode()) for t in texts[:reached])
    return out


def touch_values(graph: CompiledGraph) -> Any:
    """A cold `get_state` whose values are used (the budget's read: the whole state)."""
    snapshot = graph.get_state("chat")
    assert len(snapshot.values["messages"]) >= 0
    return snapshot


def touch_lazy(graph: CompiledGraph) -> Any:
    """A cold lazy `get_state` (`lazy=True`) of which the length of the messages and the last
    20 of them are used (what a chat shows): the snapshot document, the newest segment and
    the rows since the snapshot, not the whole list."""
    snapshot = graph.get_state("chat", lazy=True)
    messages = snapshot.values["messages"]
    assert len(messages[-20:]) == min(20, len(messages))
    return snapshot


def touch_metadata(graph: CompiledGraph) -> Any:
    """A cold `get_state` of which only what the head row says is used (`next`, `config`,
    `metadata`, `tasks`, `created_at`: what `approve`, `status` checks and `snapshot.next`
    need). Equal to `touch_values` where values are materialised eagerly."""
    snapshot = graph.get_state("chat")
    assert snapshot.config and snapshot.metadata and snapshot.created_at
    assert isinstance(snapshot.next, tuple) and isinstance(snapshot.tasks, tuple)
    return snapshot


# ---------------------------------------------------------------- children: grow


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


class Grow(BaseModel):
    items: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)
    facts: Annotated[dict[str, dict[str, Any]], merged] = Field(default_factory=dict)
    turn: int = 0
    stop_at: int = 0


def grow_durable_graph(spec: dict[str, Any]) -> dict[str, Any]:
    """One thread of N steps, each adding one ~1 KB entry to a list (`kind` "list": an
    `operator.add` reducer, the chat's shape) or to a dict (`kind` "dict": a dict reducer, one
    new key a step); then what a cold `get_state` with its values used reads (rows, payload
    objects, requests) and its median time."""
    from durable_graph.backends.local import local_backend

    n, root, kind = int(spec["n"]), Path(spec["root"]), str(spec["kind"])
    texts = chat_messages(n, int(spec["message_bytes"]))

    def step(state: Grow) -> dict[str, Any]:
        entry = texts[state.turn]
        grown = {"items": [entry]} if kind == "list" else {"facts": {f"k{state.turn}": entry}}
        return {**grown, "turn": state.turn + 1}

    def again(state: Grow) -> str:
        return "step" if state.turn < state.stop_at else END

    builder = StateGraph(Grow)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", again, {"step": "step", END: END})
    graph = builder.compile(name="bench.long_threads:grow")
    backend = local_backend(root)
    started = time.perf_counter()
    graph.with_backend(backend).invoke({"stop_at": n}, NO_LIMIT, thread_id="chat")
    out: dict[str, Any] = {"n": n, "status": "ok", "error": "", "kind": kind}
    out["seconds"] = time.perf_counter() - started
    backend.close()

    def read(app: CompiledGraph) -> Any:
        values = app.get_state("chat").values
        assert len(values["items"] if kind == "list" else values["facts"]) == n
        return values

    def cold(read_with: Callable[[CompiledGraph], Any]) -> tuple[float, Any]:
        fresh = graph.with_backend(local_backend(root))
        try:
            started = time.perf_counter()
            value = read_with(fresh)
            return (time.perf_counter() - started) * 1000, value
        finally:
            fresh.backend.close()

    out["get_state_ms"] = cold_ms(cold, read, COLD_REPEATS)
    out.update(counted_read(graph, root, read))
    return out


class CountingPayloads:
    """The real payload store, counting payload objects read and the requests that read them
    (`get_many`, where the store has it, is one request for many objects)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.objects = 0
        self.requests = 0

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> Any:
        return self.inner.put(data, content_type)

    def get(self, ref: Any) -> bytes:
        self.objects += 1
        self.requests += 1
        data: bytes = self.inner.get(ref)
        return data

    def get_many(self, refs: Any) -> list[bytes]:
        self.objects += len(refs)
        self.requests += 1
        batch = getattr(self.inner, "get_many", None)
        return list(batch(refs)) if batch is not None else [self.inner.get(r) for r in refs]

    def delete(self, ref: Any) -> bool:
        return bool(self.inner.delete(ref))

    def list_objects(self, after: str = "", limit: int = 1000) -> Any:
        return self.inner.list_objects(after, limit)

    def delete_idle(self, digests: Any, since: Any, *, dry_run: bool = False) -> list[str]:
        return list(self.inner.delete_idle(digests, since, dry_run=dry_run))


def cold_reads(app: CompiledGraph, root: Path) -> dict[str, Any]:
    """What one cold `get_state` (values touched) and one cold `get_state_history(limit=10)`
    read: checkpoint rows, payload objects, payload requests. Counted by wrapping the real
    stores of a fresh backend for each."""
    head = counted_read(app, root, touch_values)
    history = counted_read(app, root, lambda g: g.get_state_history("chat", limit=10))
    out = {f"cold_{key}": value for key, value in head.items()}
    out.update({f"hist_{key}": value for key, value in history.items()})
    return out


def counted_read(
    app: CompiledGraph, root: Path, read: Callable[[CompiledGraph], Any]
) -> dict[str, int]:
    from durable_graph.backends.local import local_backend

    backend = local_backend(root)
    try:
        records = backend.checkpoints
        counting = CountingPayloads(records.payloads)
        records.payloads = counting
        inner, rows = records.inner, [0]

        def counted(name: str) -> None:
            method = getattr(inner, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                found = method(*args, **kwargs)
                rows[0] += len(found) if isinstance(found, list) else found is not None
                return found

            setattr(inner, name, wrapper)

        for name in ("head_checkpoint", "get_checkpoint", "list_checkpoints"):
            counted(name)
        read(app.with_backend(backend))
        return {"rows": rows[0], "objects": counting.objects, "requests": counting.requests}
    finally:
        backend.close()


class LgChat(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], operator.add]
    turn: int
    stop_at: int


def chat_langgraph(spec: dict[str, Any]) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph as LgStateGraph

    n, root = int(spec["n"]), Path(spec["root"])
    texts = chat_messages(max(n, WARMUP_TURNS), int(spec["message_bytes"]))
    deadline = time.perf_counter() + float(spec["cap"])
    max_bytes = int(spec["max_bytes"])
    root.mkdir(parents=True, exist_ok=True)
    db = root / "langgraph.db"
    stamps: list[Stamp] = []
    stopped = ""

    def turn(state: LgChat) -> dict[str, Any]:
        stamps.append(stamp())
        t = state.get("turn", 0)
        return {"messages": [texts[t]], "turn": t + 1}

    end = str(LG_END)  # typed Any where langgraph is not installed (mypy without the extra)

    def again(state: LgChat) -> str:
        nonlocal stopped
        t = state.get("turn", 0)
        if t >= state.get("stop_at", 0):
            return end
        if time.perf_counter() > deadline:
            stopped = f"capped at turn {t} ({spec['cap']:g} s cap)"
            return end
        if t % 25 == 0 and db.exists() and folder_bytes(root) > max_bytes:
            stopped = f"capped at turn {t} ({max_bytes >> 20} MiB database cap)"
            return end
        return "turn"

    builder = LgStateGraph(LgChat)
    builder.add_node("turn", turn)
    builder.add_edge(LG_START, "turn")
    builder.add_conditional_edges("turn", again)
    config: Any = {"configurable": {"thread_id": "chat"}, "recursion_limit": n + 10}
    warm_db = root.parent / "warm.db"
    with sqlite3.connect(str(warm_db), check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        saver.setup()
        builder.compile(checkpointer=saver).invoke(
            {"messages": [], "turn": 0, "stop_at": WARMUP_TURNS},
            {"configurable": {"thread_id": "warm"}, "recursion_limit": WARMUP_TURNS + 10},
            durability="sync",
        )
    stamps.clear()
    out: dict[str, Any] = {"n": n, "status": "ok", "error": ""}
    started = time.perf_counter()
    with sqlite3.connect(str(db), check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        saver.setup()
        try:
            builder.compile(checkpointer=saver).invoke(
                {"messages": [], "turn": 0, "stop_at": n}, config, durability="sync"
            )
        except Exception as exc:
            out.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    out["seconds"] = time.perf_counter() - started
    if stopped and out["status"] == "ok":
        out.update(status="capped", error=stopped)

    def cold(read: Callable[[Any], Any]) -> tuple[float, Any]:
        """Time `read` on a fresh connection and saver (opened before the clock starts)."""
        with sqlite3.connect(str(db), check_same_thread=False) as fresh:
            saver = SqliteSaver(fresh)
            saver.setup()
            graph = builder.compile(checkpointer=saver)
            started = time.perf_counter()
            value = read(graph)
            return (time.perf_counter() - started) * 1000, value

    head = cold(lambda g: g.get_state(config))[1]
    reached = int(head.values.get("turn", 0))
    assert len(head.values.get("messages", [])) == reached
    out["reached"] = reached
    out["failed_turn"] = len(stamps)

    def run_again(repeat: int) -> list[Stamp]:
        stamps.clear()
        with sqlite3.connect(str(root.parent / "again.db"), check_same_thread=False) as conn:
            saver = SqliteSaver(conn)
            saver.setup()
            builder.compile(checkpointer=saver).invoke(
                {"messages": [], "turn": 0, "stop_at": n},
                {"configurable": {"thread_id": f"again-{repeat}"}, "recursion_limit": n + 10},
                durability="sync",
            )
        return stamps

    # only a thread that reached N is run again (a failed or capped one would fail again)
    medians = window_ms(stamps, run_again if reached == n else None)
    out["step_ms"], out["step_cpu_ms"] = medians if medians else (None, None)
    out["get_state_ms"] = cold_ms(cold, lambda g: g.get_state(config))
    out["history_ms"] = cold_ms(cold, lambda g: list(g.get_state_history(config, limit=10)))
    out["stored"] = folder_bytes(root)
    out["raw"] = sum(len(json.dumps(t).encode()) for t in texts[:reached])
    return out


# ---------------------------------------------------------------- children: fan-out


def fanout_durable_graph(spec: dict[str, Any]) -> dict[str, Any]:
    from durable_graph.backends.local import local_backend

    n, root = int(spec["n"]), Path(spec["root"])
    warm = local_backend(root.parent / "warm")
    fanout_graph.with_backend(warm).invoke({"count": 10}, thread_id="warm")
    warm.close()
    _PROGRESS.update(file=spec["progress"], done=0)
    backend = local_backend(root)
    app = fanout_graph.with_backend(backend)
    out: dict[str, Any] = {"n": n, "status": "ok", "error": ""}
    started = time.perf_counter()
    try:
        values = app.invoke({"count": n, "doc_bytes": spec["doc_bytes"]}, thread_id="fan")
    except Exception as exc:
        values = {}
        out.update(status="failed", error=failure_reason(exc))
    out["seconds"] = time.perf_counter() - started
    head = app.get_state("fan")
    if out["status"] == "ok" and head.status != "completed":
        message = f"{head.error.type}: {head.error.message}" if head.error else head.status
        out.update(status="failed", error=f"at step {head.step} ({head.status}): {message}")
    elif out["status"] == "ok" and sum(values.get("totals", {}).values()) != n:
        out.update(status="failed", error=f"aggregate saw {values.get('totals')}, not {n}")
    out["done"] = _PROGRESS["done"]
    out["steps"] = head.step
    backend.close()
    out["stored"] = folder_bytes(root)
    return out


class LgFan(TypedDict, total=False):
    count: int
    doc_bytes: int
    documents: list[str]
    results: Annotated[list[dict[str, Any]], operator.add]
    totals: dict[str, int]


def fanout_langgraph(spec: dict[str, Any]) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph as LgStateGraph
    from langgraph.types import Send as LgSend

    n, root = int(spec["n"]), Path(spec["root"])

    def lg_split(state: LgFan) -> dict[str, Any]:
        return {"documents": [document_text(i, state["doc_bytes"]) for i in range(state["count"])]}

    def lg_fan_out(state: LgFan) -> list[Any]:
        docs = state.get("documents", [])
        return [LgSend("classify", {"id": i, "text": d}) for i, d in enumerate(docs)] or [
            "aggregate"
        ]

    def lg_classify(task: Any) -> dict[str, Any]:
        return classify(task)

    def lg_aggregate(state: LgFan) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for r in state.get("results", []):
            totals[r["label"]] = totals.get(r["label"], 0) + 1
        return {"totals": dict(sorted(totals.items()))}

    builder = LgStateGraph(LgFan)
    builder.add_node("split", lg_split)
    builder.add_node("classify", cast(Any, lg_classify))  # its input is the Send arg
    builder.add_node("aggregate", lg_aggregate)
    builder.add_edge(LG_START, "split")
    builder.add_conditional_edges("split", lg_fan_out, ["classify", "aggregate"])
    builder.add_edge("classify", "aggregate")
    builder.add_edge("aggregate", LG_END)
    root.mkdir(parents=True, exist_ok=True)
    db = root / "langgraph.db"
    out: dict[str, Any] = {"n": n, "status": "ok", "error": ""}
    config: Any = {"configurable": {"thread_id": "fan"}}
    with sqlite3.connect(str(root.parent / "warm.db"), check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        saver.setup()
        builder.compile(checkpointer=saver).invoke(
            {"count": 10, "doc_bytes": spec["doc_bytes"]},
            {"configurable": {"thread_id": "warm"}},
            durability="sync",
        )
    _PROGRESS.update(file=spec["progress"], done=0)
    started = time.perf_counter()
    with sqlite3.connect(str(db), check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        saver.setup()
        try:
            values = builder.compile(checkpointer=saver).invoke(
                {"count": n, "doc_bytes": spec["doc_bytes"]}, config, durability="sync"
            )
            if sum(values.get("totals", {}).values()) != n:
                out.update(status="failed", error=f"aggregate saw {values.get('totals')}")
        except Exception as exc:
            out.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    out["seconds"] = time.perf_counter() - started
    out["done"] = _PROGRESS["done"]
    out["steps"] = 3
    out["stored"] = folder_bytes(root)
    return out


# ---------------------------------------------------------------- children: AWS (moto)


def fanout_aws(spec: dict[str, Any]) -> dict[str, Any]:
    import logging

    from bench.aws_requests import Meter, moto_world
    from bench.moto_scaling import scaled_moto
    from durable_graph.backends.aws import lambda_worker
    from durable_graph.backends.aws.local_poller import EventSourcePoller
    from functions.worker.handler import handler, logger

    logger.setLevel(logging.WARNING)
    logging.getLogger("durable_graph").setLevel(logging.WARNING)
    n = int(spec["n"])
    deadline = time.perf_counter() + float(spec["cap"])
    out: dict[str, Any] = {"n": n, "status": "ok", "error": ""}
    with (
        scaled_moto(),
        moto_world(FANOUT_GRAPH_PATH) as (aws, resources),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        rt = lambda_worker.worker().rt
        meter = Meter()
        for client in (rt.clients.dynamodb, rt.clients.s3, rt.clients.sqs, rt.clients.sns):
            meter.install(client)
        meter.install(aws.sqs)  # the event source mapping's receives and deletes
        poller = EventSourcePoller(aws.sqs, resources.settings.queue_url, handler)
        _ = poller.queue_arn  # resolved once, before counting
        meter.reset()
        started = time.perf_counter()
        try:
            rt.graph.start({"count": n, "doc_bytes": spec["doc_bytes"]}, thread_id="fan")
            empty = 0
            while empty < 3:
                if time.perf_counter() > deadline:
                    out.update(status="capped", error=f"capped after {spec['cap']:g} s")
                    break
                empty = empty + 1 if poller.poll_once() == 0 else 0
                if poller.stats.invocations % 25 == 0:
                    Path(spec["progress"]).write_text(str(poller.stats.invocations))
        except Exception as exc:
            out.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        out["seconds"] = time.perf_counter() - started
        requests = dict(meter.requests)
        head = rt.backend.checkpoints.head_checkpoint("fan")
    if out["status"] == "ok" and (head is None or head.status != "completed"):
        error = head.error if head is not None else None
        message = f"{error.type}: {error.message}" if error else (head.status if head else "?")
        step = head.step if head is not None else "?"
        out.update(status="failed", error=f"at step {step}: {message}")
    out["requests"] = requests
    out["invocations"] = poller.stats.invocations
    out["handler_errors"] = poller.stats.errors[:3]
    return out


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "chat-dg": chat_durable_graph,
    "grow-dg": grow_durable_graph,
    "chat-lg": chat_langgraph,
    "fanout-dg": fanout_durable_graph,
    "fanout-lg": fanout_langgraph,
    "fanout-aws": fanout_aws,
}


def child_main(raw: str) -> int:
    spec = json.loads(raw)
    result = CHILDREN[spec["part"]](spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- parent: running children


def run_child(part: str, n: int, timeout: float, repo: Path = REPO, **extra: Any) -> dict[str, Any]:
    """Run one size in a fresh process; a crash or a timeout becomes a result row. `repo`:
    the checkout whose durable-graph the child runs (`--previous`; a chat child runs it under
    this bench's harness, so both are measured the same way)."""
    with tempfile.TemporaryDirectory(prefix=f"long-threads-{part}-{n}-") as tmp:
        base = Path(tmp)
        spec = {
            "part": part,
            "n": n,
            "root": str(base / "store"),
            "result": str(base / "result.json"),
            "progress": str(base / "progress"),
            **extra,
        }
        # A chat or grow child of another checkout runs that checkout's durable-graph under this
        # bench's harness (measured the same way); other parts run its own bench.
        script = (REPO if part in HARNESS_PARTS else repo) / "bench" / "long_threads.py"
        env = dict(os.environ)
        inherited = env.get("PYTHONPATH", "") if repo == REPO else ""
        paths = (str(repo / "shared"), str(repo), inherited)
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    str(script),
                    "--child",
                    json.dumps(spec),
                ],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            progress = base / "progress"
            so_far = f", {progress.read_text()} tasks done" if progress.exists() else ""
            return {
                "n": n,
                "status": "capped",
                "error": f"killed after {timeout:.0f} s{so_far}",
                "seconds": time.perf_counter() - started,
            }
        result_file = base / "result.json"
        if done.returncode != 0 or not result_file.exists():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return {
                "n": n,
                "status": "crashed",
                "error": f"exit {done.returncode}: " + (lines[-1] if lines else "(no output)"),
                "seconds": time.perf_counter() - started,
            }
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def verdict(value: float | None, budget: float, ok: bool = True) -> str:
    if value is None:
        return f"{'—':>6} <={budget:<4g} MISS"
    passed = ok and value <= budget
    return f"{value:>6.2f} <={budget:<4g} {'PASS' if passed else 'MISS'}"


def status_text(r: dict[str, Any], unit: str) -> str:
    if r["status"] == "ok":
        return "ok"
    if r["status"] == "failed" and "failed_turn" in r and unit == "turn":
        return f"failed at {unit} {r['failed_turn']}: {short(r['error'])}"
    if r["status"] == "failed":
        return f"failed at {r['n']} {unit}s: {short(r['error'])}"
    return f"{r['status']}: {short(r['error'])}"


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def ratio(r: dict[str, Any], first: dict[str, Any], key: str) -> float | None:
    """`r[key]` over the first row's, None where either is missing or zero."""
    value, base = r.get(key), first.get(key)
    return value / base if value is not None and base else None


def ratio_cell(x: float | None, budget: float, ok: bool, budgets: bool) -> str:
    """A ratio beside its budget (PASS/MISS), or marked as the baseline's own."""
    return verdict(x, budget, ok) if budgets else f"{fmt(x, '.2f'):>6} (baseline)"


# ---------------------------------------------------------------- parent: chat


def chat_table(title: str, rows: list[dict[str, Any]], budgets: bool) -> None:
    print(f"\n{title}")
    header = (
        f"{'turns':>6} {'reached':>7} | {'step ms':>7} {'x first':>20} | "
        f"{'cpu ms':>6} {'x first':>20} | {'stored KiB':>10} {'x raw':>20} | "
        f"{'peak MiB':>8} | status"
    )
    print(header)
    print("-" * len(header))
    first = rows[0] if rows else {}
    for r in rows:
        ok = r["status"] == "ok" and r.get("reached") == r["n"]
        step, cpu = r.get("step_ms"), r.get("step_cpu_ms")
        raw_x = r["stored"] / r["raw"] if r.get("raw") else None
        step_cell = ratio_cell(ratio(r, first, "step_ms"), STEP_BUDGET, ok, budgets)
        cpu_cell = ratio_cell(ratio(r, first, "step_cpu_ms"), STEP_BUDGET, ok, budgets)
        raw_cell = ratio_cell(raw_x, STORED_BUDGET, ok, budgets)
        print(
            f"{r['n']:>6} {r.get('reached', '—'):>7} | {fmt(step, '.2f'):>7} {step_cell:>20} | "
            f"{fmt(cpu, '.2f'):>6} {cpu_cell:>20} | "
            f"{fmt(r['stored'] / 1024 if 'stored' in r else None, '.0f'):>10} {raw_cell:>20} | "
            f"{fmt(r.get('max_rss_mib'), '.0f'):>8} | {status_text(r, 'turn')}"
        )
    cold_table(rows, budgets)


def cold_table(rows: list[dict[str, Any]], budgets: bool) -> None:
    """The cold reads of the same threads: get_state with its values used (the budget's
    number), get_state of the head's metadata only, history, and what a read fetches."""
    print(
        "cold reads (a fresh reader, median of 9): get_state = the head with its values used "
        "(the budget's read), wall ms and CPU ms (this process, every thread; steadier under "
        "load); meta = the same call with only next/config/metadata/tasks used; hist10 = "
        "get_state_history(limit=10); rows / payloads / requests = checkpoint rows, payload "
        "objects and payload requests of one get_state with its values used (on S3, a GET "
        "per payload object); h10 rows / objs = the same for one get_state_history(limit=10)"
    )
    header = (
        f"{'turns':>6} | {'get_state ms':>12} {'x first':>20} | {'cpu ms':>7} {'x first':>20} | "
        f"{'meta ms':>7} {'x first':>7} {'cpu ms':>7} | {'hist10 ms':>9} | "
        f"{'rows':>4} {'payloads':>8} {'requests':>8} | {'h10 rows':>8} {'h10 objs':>8}"
    )
    print(header)
    print("-" * len(header))
    first = rows[0] if rows else {}
    for r in rows:
        ok = r["status"] == "ok" and r.get("reached") == r["n"]
        gs_cell = ratio_cell(ratio(r, first, "get_state_ms"), GET_STATE_BUDGET, ok, budgets)
        cpu_cell = ratio_cell(ratio(r, first, "get_state_cpu_ms"), GET_STATE_BUDGET, ok, budgets)
        print(
            f"{r['n']:>6} | {fmt(r.get('get_state_ms'), '.2f'):>12} {gs_cell:>20} | "
            f"{fmt(r.get('get_state_cpu_ms'), '.2f'):>7} {cpu_cell:>20} | "
            f"{fmt(r.get('meta_ms'), '.2f'):>7} {fmt(ratio(r, first, 'meta_ms'), '.2f'):>7} "
            f"{fmt(r.get('meta_cpu_ms'), '.2f'):>7} | {fmt(r.get('history_ms'), '.2f'):>9} | "
            f"{fmt(r.get('cold_rows'), 'd'):>4} {fmt(r.get('cold_objects'), 'd'):>8} "
            f"{fmt(r.get('cold_requests'), 'd'):>8} | {fmt(r.get('hist_rows'), 'd'):>8} "
            f"{fmt(r.get('hist_objects'), 'd'):>8}"
        )


def lazy_table(rows: list[dict[str, Any]]) -> None:
    """The lazy cold read of the same threads beside the eager one and the head-only one."""
    print(
        "\nlazy cold reads (a fresh reader, median of 9): lazy = get_state(lazy=True) with "
        "len(messages) and messages[-20:] used, wall and CPU ms; the 3x budget held with it; "
        "eager = get_state with its values used (every message); head = only what the head "
        "row says; rows / objs = checkpoint rows and payload objects of one lazy read"
    )
    header = (
        f"{'turns':>6} | {'lazy ms':>8} {'x first':>20} | {'cpu ms':>7} {'x first':>20} | "
        f"{'eager ms':>8} {'x first':>7} | {'head ms':>7} {'x first':>7} | {'rows':>4} {'objs':>4}"
    )
    print(header)
    print("-" * len(header))
    first = rows[0] if rows else {}
    for r in rows:
        ok = r["status"] == "ok" and r.get("reached") == r["n"] and "lazy_ms" in r
        print(
            f"{r['n']:>6} | {fmt(r.get('lazy_ms'), '.2f'):>8} "
            f"{verdict(ratio(r, first, 'lazy_ms'), GET_STATE_BUDGET, ok):>20} | "
            f"{fmt(r.get('lazy_cpu_ms'), '.2f'):>7} "
            f"{verdict(ratio(r, first, 'lazy_cpu_ms'), GET_STATE_BUDGET, ok):>20} | "
            f"{fmt(r.get('get_state_ms'), '.2f'):>8} "
            f"{fmt(ratio(r, first, 'get_state_ms'), '.2f'):>7} | "
            f"{fmt(r.get('meta_ms'), '.2f'):>7} {fmt(ratio(r, first, 'meta_ms'), '.2f'):>7} | "
            f"{fmt(r.get('lazy_rows'), 'd'):>4} {fmt(r.get('lazy_objects'), 'd'):>4}"
        )


def run_chat(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.turns.split(",")]
    extra = {"message_bytes": args.message_bytes}
    ours: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    blocked = ""
    for n in sizes:
        if blocked:
            ours.append({"n": n, "status": "skipped", "error": blocked})
            continue
        r = run_child("chat-dg", n, args.cap_seconds + 180, cap=args.cap_seconds, **extra)
        ours.append(r)
        if r["status"] in ("capped", "crashed"):
            blocked = f"not run: {r['status']} at {n} turns"
        print(f"  chat durable-graph {n}: {status_text(r, 'turn')}", file=sys.stderr, flush=True)
        if args.previous is not None:  # interleaved: the same machine load for both
            p = run_child(
                "chat-dg", n, args.cap_seconds + 180, args.previous, cap=args.cap_seconds, **extra
            )
            before.append(p)
            print(f"  chat previous {n}: {status_text(p, 'turn')}", file=sys.stderr, flush=True)
    theirs: list[dict[str, Any]] = []
    if not args.no_langgraph:
        blocked = ""
        for n in sizes:
            if blocked:
                theirs.append({"n": n, "status": "skipped", "error": blocked})
                continue
            r = run_child(
                "chat-lg",
                n,
                args.langgraph_cap_seconds + 300,
                cap=args.langgraph_cap_seconds,
                max_bytes=args.langgraph_max_mb << 20,
                **extra,
            )
            theirs.append(r)
            if r["status"] != "ok":
                blocked = f"not run: {r['status']} at {n} turns"
            print(f"  chat LangGraph {n}: {status_text(r, 'turn')}", file=sys.stderr, flush=True)
    print(
        f"\n== chat: one thread, one {args.message_bytes} B message appended per turn "
        f"(cap {args.cap_seconds:.0f} s per size)"
    )
    print(
        "step ms = median interval between consecutive turns over the last 20 turns (pooled "
        "over repeated threads when N < 21); cpu ms = the same for this process's CPU time "
        "(no wait for fsync or for a CPU of a loaded machine: the steadier of the two); "
        "'x first' = ratio to the first row (budget beside it); get_state / hist10 = cold reader."
    )
    print(
        "stored = every file of the store (SQLite file(s) + payload folder) after close; at few "
        "turns the empty store's fixed pages dominate x raw. peak MiB = the process's peak "
        "resident memory after running the thread (durable-graph only)."
    )
    chat_table("durable-graph (embedded SQLite, inline runner)", ours, budgets=True)
    lazy_table(ours)
    if before:
        chat_table(f"durable-graph, previous checkout ({args.previous})", before, budgets=True)
    if ours and "empty" in ours[0]:
        print(f"(an empty durable-graph store is {ours[0]['empty'] / 1024:.0f} KiB on disk)")
    if theirs:
        chat_table(
            f"LangGraph SqliteSaver (durability=sync; cap {args.langgraph_cap_seconds:.0f} s, "
            f"{args.langgraph_max_mb} MiB per size)",
            theirs,
            budgets=False,
        )
        print("\ndurable-graph vs LangGraph at the same turn count (theirs / ours):")
        for a, b in zip(ours, theirs, strict=True):
            if a.get("step_ms") and b.get("step_ms") and a.get("reached") == b.get("reached"):
                print(
                    f"  {a['n']:>6} turns: step {b['step_ms'] / a['step_ms']:.2f}x, "
                    f"get_state {b['get_state_ms'] / max(a['get_state_ms'], 1e-6):.2f}x, "
                    f"stored {b['stored'] / a['stored']:.2f}x"
                )
            else:
                print(f"  {a['n']:>6} turns: not comparable (different turns reached)")


# ---------------------------------------------------------------- parent: grow


def run_grow(args: argparse.Namespace) -> None:
    """A list and a dict grown one ~1 KB entry a step, side by side at each size: the payload
    objects a cold read of the head fetches (snapshot segments merged in runs for both: O(log
    n)), and its time."""
    sizes = [int(s) for s in args.steps.split(",")]
    checkouts = [("this checkout", REPO)]
    if args.previous is not None:
        checkouts.append((f"previous checkout ({args.previous})", args.previous))
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for n in sizes:  # interleaved: the same machine load for every cell of a row
        for label, repo in checkouts:
            for kind in ("list", "dict"):
                r = run_child(
                    "grow-dg",
                    n,
                    args.cap_seconds + 180,
                    repo,
                    kind=kind,
                    message_bytes=args.message_bytes,
                )
                rows[label, kind, n] = r
                print(f"  grow {kind} {n} ({label}): {r['status']}", file=sys.stderr, flush=True)
    print(
        f"\n== grow: one thread, one {args.message_bytes} B entry a step appended to a list "
        "or added to a dict (a new key); a cold get_state of the head, values used"
    )
    print("objects / requests = payload objects and payload requests that read reads; ms: median")
    for label, _ in checkouts:
        print(f"\n{label}")
        header = (
            f"{'steps':>6} | {'list objects':>12} {'requests':>8} {'ms':>8} | "
            f"{'dict objects':>12} {'requests':>8} {'ms':>8}"
        )
        print(header)
        print("-" * len(header))
        for n in sizes:
            cells = []
            for kind in ("list", "dict"):
                r = rows[label, kind, n]
                if r["status"] != "ok":
                    cells.append(f"{short(r['error'], 30):>30}")
                    continue
                cells.append(
                    f"{r['objects']:>12} {r['requests']:>8} {fmt(r['get_state_ms'], '.1f'):>8}"
                )
            print(f"{n:>6} | {cells[0]} | {cells[1]}")


# ---------------------------------------------------------------- parent: fan-out


def fanout_table(title: str, rows: list[dict[str, Any]], budgets: bool) -> None:
    print(f"\n{title}")
    header = (
        f"{'docs':>6} | {'wall s':>8} {'ms/doc':>8} {'x first':>20} | {'stored KiB':>10} | status"
    )
    print(header)
    print("-" * len(header))
    first = rows[0] if rows else {}

    def per_doc(r: dict[str, Any]) -> float | None:
        return r["seconds"] * 1000 / r["n"] if r["status"] == "ok" else None

    base = per_doc(first)
    for r in rows:
        ms = per_doc(r)
        x = ms / base if ms is not None and base else None
        cell = ratio_cell(x, PER_DOC_BUDGET, True, budgets)
        stored = r["stored"] / 1024 if "stored" in r else None
        print(
            f"{r['n']:>6} | {fmt(r.get('seconds'), '.2f'):>8} {fmt(ms, '.3f'):>8} {cell:>20} | "
            f"{fmt(stored, '.0f'):>10} | {status_text(r, 'doc')}"
        )


def run_fanout(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.docs.split(",")]
    tables = [("fanout-dg", "durable-graph (embedded SQLite, inline runner)", True)]
    if not args.no_langgraph:
        tables.append(
            (
                "fanout-lg",
                f"LangGraph SqliteSaver (durability=sync; cap {args.langgraph_cap_seconds:.0f} s)",
                False,
            )
        )
    print(
        f"\n== fanout: split → Send one classify task per ~{args.doc_bytes} B document → "
        f"aggregate (cap {args.cap_seconds:.0f} s per size)",
        flush=True,
    )
    results: list[tuple[str, list[dict[str, Any]], bool]] = []
    for part, title, budgets in tables:
        cap = args.cap_seconds if part == "fanout-dg" else args.langgraph_cap_seconds
        rows: list[dict[str, Any]] = []
        blocked = ""
        for n in sizes:
            if blocked:
                rows.append({"n": n, "status": "skipped", "error": blocked})
                continue
            r = run_child(part, n, cap, doc_bytes=args.doc_bytes)
            rows.append(r)
            if r["status"] in ("capped", "crashed"):
                blocked = f"not run: {r['status']} at {n} docs"
            print(f"  {part} {n}: {status_text(r, 'doc')}", file=sys.stderr, flush=True)
        results.append((title, rows, budgets))
    print("ms/doc = wall time of the whole run / documents; 'x first' = ratio to the first row.")
    for title, rows, budgets in results:
        fanout_table(title, rows, budgets)


# ---------------------------------------------------------------- parent: AWS


def run_aws(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.aws_tasks.split(",")]
    rows = []
    for n in sizes:
        r = run_child("fanout-aws", n, args.cap_seconds + 60, cap=args.cap_seconds, doc_bytes=500)
        rows.append(r)
        print(f"  fanout-aws {n}: {status_text(r, 'task')}", file=sys.stderr, flush=True)
    print(
        "\n== aws: the same fan-out on moto, real worker path (ESM emulated, batch size 1); "
        "requests from start to settled, per fan-out task"
    )
    header = (
        f"{'tasks':>6} | {'DDB/task':>8} {'S3/task':>8} {'DDB+S3':>20} {'x first':>22} | "
        f"{'SQS/task':>8} {'Lambda/task':>11} | {'wall s':>7} | status"
    )
    print(header)
    print("-" * len(header))
    base: float | None = None
    for r in rows:
        req: dict[str, int] = r.get("requests", {})
        ok = r["status"] == "ok"
        failed = r["status"] not in ("ok", "capped") or not req
        # a capped run is divided by the tasks it processed (one Lambda invocation each);
        # a failed one has no per-task figure (its totals are printed below the row)
        n = r["n"] if ok or not r.get("invocations") else r["invocations"]
        ddb = None if failed else sum(v for k, v in req.items() if k.startswith("dynamodb.")) / n
        s3 = None if failed else sum(v for k, v in req.items() if k.startswith("s3.")) / n
        sqs = None if failed else sum(v for k, v in req.items() if k.startswith("sqs.")) / n
        both = ddb + s3 if ddb is not None and s3 is not None else None
        if base is None and ok:
            base = both
        x = both / base if both is not None and base and ok else None
        lam = None if failed else r.get("invocations", 0) / n
        print(
            f"{r['n']:>6} | {fmt(ddb, '.2f'):>8} {fmt(s3, '.2f'):>8} "
            f"{verdict(both, AWS_PER_TASK_BUDGET, ok):>20} "
            f"{verdict(x, AWS_INDEPENDENCE, ok):>22} | {fmt(sqs, '.2f'):>8} "
            f"{fmt(lam, '.2f'):>11} | {fmt(r.get('seconds'), '.1f'):>7} | {status_text(r, 'task')}"
        )
        if req and not failed:
            ops = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(req.items()))
            print(f"{'':>6}   per task: {ops}")
        elif req:
            ops = ", ".join(f"{k} {v}" for k, v in sorted(req.items()))
            print(f"{'':>6}   total before the failure: {ops}")
    print(
        f"budget: DynamoDB + S3 requests per fan-out task <= {AWS_PER_TASK_BUDGET:g}, and "
        f"independent of N (largest N within {AWS_INDEPENDENCE:.2f}x of the first). A capped "
        "run's rows are per task processed before the cap (one Lambda invocation each)."
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 1)[-1],
    )
    parser.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=["all", "chat", "grow", "fanout", "aws", "aws-chat"],
    )
    parser.add_argument("--turns", default="10,100,1000,10000")
    parser.add_argument("--steps", default="10,1000,10000", help="grow: thread lengths")
    parser.add_argument("--docs", default="100,1000,10000")
    parser.add_argument("--aws-tasks", default="100,2000")
    parser.add_argument("--message-bytes", type=int, default=1024)
    parser.add_argument("--doc-bytes", type=int, default=DOC_BYTES)
    parser.add_argument(
        "--cap-seconds", type=float, default=300.0, help="durable-graph time cap per size"
    )
    parser.add_argument(
        "--langgraph-cap-seconds", type=float, default=120.0, help="LangGraph time cap per size"
    )
    parser.add_argument(
        "--langgraph-max-mb", type=int, default=4096, help="LangGraph database cap per size"
    )
    parser.add_argument("--no-langgraph", action="store_true", help="skip the baselines")
    parser.add_argument(
        "--previous",
        type=Path,
        help="chat, grow: also run another checkout's durable-graph at each size, interleaved "
        "(before/after in one run)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small and fast: turns 10,100; steps 10,200; docs 20,100; aws tasks 10,40; "
        "caps 60 s / 30 s",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.quick:
        args.turns, args.docs, args.aws_tasks = "10,100", "20,100", "10,40"
        args.steps = "10,200"
        args.cap_seconds, args.langgraph_cap_seconds = 60.0, 30.0
    if not args.no_langgraph:
        try:
            import langgraph.checkpoint.sqlite  # noqa: F401
        except ImportError as exc:
            print(f"LangGraph not installed ({exc}): pip install -e '.[bench]'; baselines skipped")
            args.no_langgraph = True
    print(
        f"long_threads: turns {args.turns}; docs {args.docs}; aws tasks {args.aws_tasks}; "
        f"cap {args.cap_seconds:.0f} s per size (LangGraph {args.langgraph_cap_seconds:.0f} s)",
        flush=True,
    )
    if args.part in ("all", "chat"):
        run_chat(args)
    if args.part in ("all", "grow"):
        run_grow(args)
    if args.part in ("all", "fanout"):
        run_fanout(args)
    if args.part in ("all", "aws"):
        run_aws(args)
    if args.part == "aws-chat":
        # Imported here: it imports this module's chat, and moto only when this part runs.
        from bench.aws_chat_storage import report

        report([int(n) for n in args.turns.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
