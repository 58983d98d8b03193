"""The checkpoint record (DESIGN.md §4): immutable, hash-chained, self-describing.

`hash = sha256(RFC 8785 canonical JSON of every other field)`; `prev_hash` links to the previous
step (all zeros at step 0). Payload refs inside `values` and `io` carry their own sha256, so the
chain covers payload bytes too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.canonical import ZERO_HASH, digest

Status = Literal["running", "suspended", "completed", "failed"]
Source = Literal["input", "node", "update", "fork"]
TERMINAL: frozenset[str] = frozenset({"completed"})


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayloadRef(_Record):
    """Pointer to content-addressed bytes in the payload store."""

    uri: str
    sha256: str
    size: int
    content_type: str = "application/octet-stream"


class Task(_Record):
    """One unit of work: run `node` from the checkpoint that lists it in `next`.

    `id` is fixed when the task is first scheduled (origin step + node + index) and survives
    suspensions, failures and resumes, so a task's pending writes and recorded side effects are
    found again when it re-runs.
    """

    id: str
    node: str
    arg: Any = None


class GraphRef(_Record):
    name: str
    version: str


class Actor(_Record):
    """Who caused a step: the engine itself, a worker process, a human approver, a webhook."""

    kind: Literal["system", "worker", "human", "webhook", "api", "cli"]
    id: str


class ParentRef(_Record):
    thread_id: str
    step: int
    hash: str


class RouteDecision(_Record):
    """Which edge decided the next tasks after `source`, and what it returned."""

    source: str
    kind: Literal["edge", "conditional", "update"]
    router: str | None = None
    result: list[str] = Field(default_factory=list)


class InterruptInfo(_Record):
    node: str
    when: Literal["before", "after", "during"]
    payload: Any = None
    task_id: str | None = None


class IoRecord(_Record):
    """An external input captured through the node context (LLM call, API response, effect)."""

    task_id: str
    name: str
    kind: Literal["step", "record"]
    request_sha256: str | None = None
    response_sha256: str
    response: Any = None


class ErrorInfo(_Record):
    node: str
    task_id: str
    type: str
    message: str
    attempts: int
    retryable: bool = True


class Checkpoint(_Record):
    thread_id: str
    step: int
    parent: ParentRef | None = None
    source: Source
    nodes: list[str] = Field(default_factory=list)
    values: dict[str, Any]
    next: list[Task] = Field(default_factory=list)
    route: list[RouteDecision] = Field(default_factory=list)
    interrupt: InterruptInfo | None = None
    resume: dict[str, list[Any]] = Field(default_factory=dict)
    io: list[IoRecord] = Field(default_factory=list)
    status: Status
    error: ErrorInfo | None = None
    graph: GraphRef
    created_at: str
    duration_ms: float = 0.0
    attempt: int = 1
    actor: Actor
    prev_hash: str = ZERO_HASH
    hash: str = ""

    def hash_body(self) -> dict[str, Any]:
        """Every field but `hash`, as plain JSON: the exact input of the record's digest."""
        return self.model_dump(mode="json", exclude={"hash"})

    def compute_hash(self) -> str:
        return digest(self.hash_body())

    def sealed(self) -> Checkpoint:
        """Return a copy with `hash` filled in; the only way records get their hash."""
        return self.model_copy(update={"hash": self.compute_hash()})


class ThreadRecord(BaseModel):
    """Mutable head of a thread, rewritten only when its status changes (not every step)."""

    model_config = ConfigDict(extra="forbid")

    thread_id: str
    graph: GraphRef
    status: Status
    head_step: int
    created_at: str
    updated_at: str
    origin: ParentRef | None = None
    interrupt: InterruptInfo | None = None
    error: ErrorInfo | None = None
    revision: int = 0


class VersionedRecord(BaseModel):
    """A small record with compare-and-set semantics: pending writes, effects, tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value: dict[str, Any]
    version: int
