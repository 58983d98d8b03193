"""The typed parts a checkpoint record is made of (`docs/record-format.md`): payload refs, a
field's change, tasks, routes, interrupts, io records, errors and approvals. `checkpoint.py`
assembles them into the record and hashes it; every part is a frozen pydantic model that
forbids unknown fields, so a stored row with a stray key fails to parse.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from durable_graph.model_copies import copied
from durable_graph.operator_proof import OperatorProof

Status = Literal["running", "suspended", "completed", "failed"]
Source = Literal["input", "node", "update", "fork"]
Op = Literal["set", "add", "merge", "del", "keep"]
TERMINAL: frozenset[str] = frozenset({"completed"})


class Record(BaseModel):
    """A stored part: frozen, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def copied(self, **update: Any) -> Self:
        """`model_copy(update=update)` (unvalidated, as it is), without its generic work
        (`model_copies.copied`): a model copy cost as much as sealing the change it carried.
        `update` holds engine-made values for fields."""
        return copied(self, update)


def _unsalted(salt: str | None) -> bool:
    return salt is None


def _salt() -> Any:
    """A part's salt (`salted_parts.py`): absent from every dump while None, so a part
    without one (records written before salts, every copy of a part) stores and hashes as
    it always did."""
    return Field(default=None, exclude_if=_unsalted)


class PayloadRef(Record):
    """Pointer to content-addressed bytes in the payload store."""

    uri: str
    sha256: str
    size: int
    content_type: str = "application/octet-stream"


class Change(Record):
    """One field's change at one step. `op` and `d` are hashed into the record; `s`, `v` and
    `ref` are how the value is kept (inline, or in the payload store under `ref`), or `e` when
    the thread's values are encrypted (the chunk `{s, v}` sealed with its data key,
    `encryption.py`)."""

    op: Op
    d: str = ""
    s: str | None = None
    v: Any = None
    ref: PayloadRef | None = None
    e: str | None = None

    def committed(self) -> dict[str, str]:
        """The part of the change the record's hash covers."""
        return {"op": self.op, "d": self.d}

    @classmethod
    def inline_chunk(cls, op: Op, d: str, s: str, v: Any) -> Change:
        """The change `Change(op=op, d=d, s=s, v=v)` is, built without validation (half its
        time; `model_construct` takes longer than validating): for the engine's own parts, an
        op it chose, the chunk's digest, a salt it drew and a JSON value (`v` is `Any`:
        validation takes it as it is too)."""
        change = object.__new__(cls)
        _set = object.__setattr__
        _set(change, "__dict__", {"op": op, "d": d, "s": s, "v": v, "ref": None, "e": None})
        _set(change, "__pydantic_fields_set__", {"op", "d", "s", "v"})
        _set(change, "__pydantic_extra__", None)
        _set(change, "__pydantic_private__", None)
        return change

    @property
    def inline(self) -> bool:
        return self.ref is None and self.s is not None


class Task(Record):
    """One unit of work: run `node` from the checkpoint that lists it in `next`.

    `id` is fixed when the task is first scheduled (origin step + node + index) and survives
    suspensions, failures and resumes, so a task's pending writes and recorded side effects are
    found again when it re-runs.
    """

    id: str
    node: str
    arg: Any = None
    s: str | None = _salt()  # the salt of `arg` (salted_parts.py)
    # Set on a task of a failed or interrupted superstep that succeeded: its result was
    # recorded while running from that step, and the retry reuses it instead of running again.
    done_at: int | None = None


class GraphRef(Record):
    name: str
    version: str


class Actor(Record):
    """Who caused a step: the engine itself, a worker process, a human approver, a webhook."""

    kind: Literal["system", "worker", "human", "webhook", "api", "cli"]
    id: str


class ParentRef(Record):
    thread_id: str
    step: int
    hash: str


class RouteDecision(Record):
    """Which edge decided the next tasks after `source`, and what it returned."""

    source: str
    kind: Literal["edge", "conditional", "update"]
    router: str | None = None
    result: list[str] = Field(default_factory=list)


class InterruptInfo(Record):
    node: str
    when: Literal["before", "after", "during"]
    payload: Any = None
    task_id: str | None = None
    s: str | None = _salt()  # the salt of `payload`


class IoRecord(Record):
    """An external input captured through the node context (LLM call, API response, effect)."""

    task_id: str
    name: str
    kind: Literal["step", "record"]
    request_sha256: str | None = None
    # Empty only in a stored format-2 row, where it is the digest of `response` and derived
    # again on read (`Checkpoint.with_io_restored`).
    response_sha256: str = ""
    response: Any = None
    # The salt of `response`: then `response_sha256` is the salted digest, always derived.
    s: str | None = _salt()


class ErrorInfo(Record):
    node: str
    task_id: str
    type: str
    message: str
    attempts: int
    retryable: bool = True
    s: str | None = _salt()  # the salt of `message`


class RuleInfo(Record):
    """The `ApprovalRule` in force at a decision (`ApprovalRule.describe()`)."""

    approvals_required: int
    requester_may_approve: bool = True
    requester_field: str | None = None
    sign_in_required: bool = False


class Approval(Record):
    """One person's decision toward a rule: who (`actor`, `key`, `email`), how the identity
    was established (`method`), by which route (`via`: a link's id, the API, the CLI), when."""

    actor: Actor
    key: str
    email: str | None = None
    method: str = ""
    via: str = ""
    decision: str = "approve"
    at: str
    # An enrolled operator's certificate and signature (`operator_proof.py`); left out of the
    # dump when absent, so an approval without one hashes as it did before the field.
    operator: OperatorProof | None = None

    @model_serializer(mode="wrap")
    def _without_absent_operator(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict) and dumped.get("operator", 0) is None:
            del dumped["operator"]
        return dumped


class SignOffRecord(Record):
    """Who decided a step under an approval rule, in order (the last is the step's actor)."""

    rule: RuleInfo
    approvals: list[Approval]
