"""Request and response bodies of the HTTP API (documented in `openapi.yaml`, generated from
these models by `durable_graph.api.openapi`). `extra="forbid"` on every request: a misspelt
field is an error, not silently ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.erasure_record import ErasureRecord

THREAD_ID_PATTERN = r"^[^/#\x00-\x1f\x7f]{1,200}$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------- requests


class StartThreadRequest(_Request):
    """Body of `POST /threads` (signed as a Standard Webhook)."""

    graph: str | None = Field(
        default=None,
        max_length=300,
        description="import path of an allowed graph; the server's default when omitted",
    )
    thread_id: str | None = Field(
        default=None,
        pattern=THREAD_ID_PATTERN,
        description="derived from the webhook id when omitted",
    )
    input: dict[str, Any] = Field(default_factory=dict, description="initial state fields")


class ResumeRequest(_Request):
    """Body of `POST /threads/{thread_id}/resume`."""

    values: dict[str, Any] | None = Field(default=None, description="state update")
    as_node: str | None = Field(
        default=None, max_length=200, description="write the values as if this node had run"
    )
    expected_step: int = Field(
        ge=0, description="the head step the caller saw; 409 if the thread moved since"
    )
    resume_value: Any = Field(
        default=None, description="value returned by interrupt() inside the suspended node"
    )


class DecisionRequest(_Request):
    """Body of `POST /approvals/{token}` (JSON, or form-encoded from the approval page)."""

    decision: str = Field(min_length=1, max_length=32, description="e.g. approve or reject")
    comment: str = Field(default="", max_length=2000)


class HistoryQuery(_Request):
    limit: int = Field(default=20, ge=1, le=100)
    before: int | None = Field(default=None, ge=0)


class DiffQuery(_Request):
    """Query of `GET /threads/{thread_id}/diff`."""

    a: int = Field(ge=0, le=999_999_999, description="the earlier step")
    b: int = Field(ge=0, le=999_999_999, description="the later step")
    thread_b: str | None = Field(
        default=None, pattern=THREAD_ID_PATTERN, description="take step b from this thread"
    )


class ForkRequest(_Request):
    """Body of `POST /threads/{thread_id}/fork`."""

    step: int = Field(ge=0, le=999_999_999, description="the step to branch from")
    new_thread_id: str = Field(pattern=THREAD_ID_PATTERN, description="the fork's thread id")
    values: dict[str, Any] | None = Field(
        default=None, description="state update applied to the fork's step 0 (reducers apply)"
    )


class EraseRequest(_Request):
    """Body of `POST /threads/{thread_id}/erase`."""

    fields: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="state fields to erase at every step (default: every field, unless parts)",
    )
    parts: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="record parts to erase at every step: args, interrupts, resume, errors, io "
        "(default: every part, unless fields)",
    )
    reason: str = Field(
        min_length=1, max_length=2000, description="why (recorded in the signed erasure record)"
    )


# ------------------------------------------------------------------------------ responses


class GraphView(_Response):
    name: str
    version: str


class InterruptView(_Response):
    node: str
    when: Literal["before", "after", "during"]
    payload: Any = None


class ErrorInfoView(_Response):
    node: str
    task_id: str
    type: str
    message: str
    attempts: int
    retryable: bool


class ActorView(_Response):
    kind: str
    id: str


class ApprovalView(_Response):
    """One approval recorded toward a decision that needs several (`ApprovalRule`)."""

    by: str = Field(description="the approver's identity, as the ledger records actors")
    decision: str
    comment: str
    via: str = Field(description="how: an approval link, the resume route")
    at: str
    method: str = Field(
        default="",
        description="how the identity was established: oidc, session, api_key, iam, "
        "os_user (the CLI), caller (Python), bearer (a link's holder, nobody verified)",
    )


class ApprovalsView(_Response):
    """Approvals recorded so far toward the suspended step's decision."""

    required: int = Field(description="distinct approvers the node's rule needs")
    approvals: list[ApprovalView]
    chained: bool | None = Field(
        default=None,
        description="a decided step's: true when the list is hashed with the step; false for "
        "a step written before approvals were, whose earlier approvers are outside the chain",
    )


def approvals_view(
    required: int,
    approvals: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    chained: bool | None = None,
) -> ApprovalsView:
    """`approvals#<step>` entries (`durable_graph.signoff`), or a step's `signoff`
    (`approval_record.approvals_of`), as the API shows them."""
    return ApprovalsView(
        required=required,
        chained=chained,
        approvals=[
            ApprovalView(
                by=str(a["actor"]["id"]),
                decision=str(a.get("decision", "")),
                comment=str(a.get("comment", "")),
                via=str(a.get("via", "")),
                at=str(a.get("at", "")),
                method=str(a.get("method", "")),
            )
            for a in approvals
        ],
    )


class ThreadView(_Response):
    thread_id: str
    status: Literal["running", "suspended", "completed", "failed"]
    step: int
    graph: GraphView
    next: list[str]
    interrupt: InterruptView | None
    error: ErrorInfoView | None
    values: dict[str, Any]
    created_at: str
    updated_at: str
    approvals: ApprovalsView | None = Field(
        default=None, description="a suspended step's approvals so far, under a two-person rule"
    )


class StartThreadResponse(_Response):
    thread: ThreadView
    webhook_id: str
    replayed: bool = Field(description="true when this webhook id was already processed")


class HistoryItem(_Response):
    step: int
    source: Literal["input", "node", "update", "fork"]
    nodes: list[str]
    status: Literal["running", "suspended", "completed", "failed"]
    actor: ActorView
    hash: str
    prev_hash: str
    created_at: str


class HistoryPage(_Response):
    thread_id: str
    items: list[HistoryItem]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class StepView(_Response):
    thread_id: str
    step: int
    source: Literal["input", "node", "update", "fork"]
    status: Literal["running", "suspended", "completed", "failed"]
    nodes: list[str]
    next: list[str]
    values: dict[str, Any] = Field(description="state after the step, payloads fetched back")
    interrupt: InterruptView | None
    error: ErrorInfoView | None
    actor: ActorView
    route: list[dict[str, Any]]
    io: list[dict[str, Any]]
    parent: dict[str, Any] | None
    graph: GraphView
    created_at: str
    duration_ms: float
    hash: str
    prev_hash: str
    approvals: ApprovalsView | None = Field(
        default=None, description="who decided this step under an approval rule, in order"
    )


class ProblemView(_Response):
    step: int
    check: str
    reason: str


class VerifyView(_Response):
    """What `verify` found (the CLI's `verify --json`)."""

    thread_id: str
    ok: bool
    checked: int = Field(description="how many checkpoints were verified")
    checks: list[str]
    signed_steps: list[int]
    key_ids: list[str] = Field(description="the keys the head signatures are by")
    notes: list[str] = Field(default_factory=list)
    first_bad_step: int | None = None
    check: str | None = Field(default=None, description="which check failed first")
    reason: str | None = None
    first_by_check: dict[str, int] = Field(default_factory=dict)
    problems: list[ProblemView] = Field(default_factory=list)
    erased: dict[str, list[str]] = Field(
        default_factory=dict, description="step -> the fields whose values were erased there"
    )
    erasures: list[dict[str, Any]] = Field(
        default_factory=list, description="the signed erasure records: who, when, why, what"
    )
    approved: dict[str, list[str]] = Field(
        default_factory=dict,
        description="step -> who approved the decision written there under an approval rule, "
        "in order (hashed with the step)",
    )


class EraseResponse(_Response):
    """What `POST /threads/{thread_id}/erase` did."""

    erased: bool = Field(description="false: nothing was left to erase, nothing was written")
    record: ErasureRecord | None = Field(
        default=None, description="the signed erasure record written (erasure_record.py)"
    )
    scheduled: list[str] = Field(
        default_factory=list,
        description="digests of the record's payloads not deleted yet: shared objects stored "
        "less than 10 s before (a step may be about to commit them), deleted by the next "
        "retention run (the sweeper) or erase of the thread once that has passed",
    )


class StepSummary(_Response):
    thread_id: str
    step: int
    hash: str
    source: Literal["input", "node", "update", "fork"]
    nodes: list[str]
    status: Literal["running", "suspended", "completed", "failed"]
    next: list[str]
    actor: ActorView
    created_at: str


class FieldChange(_Response):
    """One changed field: `old`/`new` for changed, `new` for added, `old` for removed, the new
    items for a list that grew at its end (`appended`). Offloaded values show as
    `{"payload": {sha256, size, content_type}}`."""

    field: str
    change: Literal["added", "removed", "appended", "changed"]
    old: Any = None
    new: Any = None
    appended: list[Any] | None = None
    old_length: int | None = None
    new_length: int | None = None


class DiffView(_Response):
    """Which state fields changed from step a to step b (the CLI's `diff --json`)."""

    a: StepSummary
    b: StepSummary
    changes: list[FieldChange]
    unchanged: list[str]


class DecisionView(_Response):
    thread_id: str
    step: int = Field(description="the suspended step the link was issued for")
    node: str
    decision: str | None
    comment: str
    decided_by: str
    decided_at: str
    applied_step: int | None = Field(description="the checkpoint that recorded the decision")


class DecisionResponse(_Response):
    decision: DecisionView
    thread_status: Literal["running", "suspended", "completed", "failed"]
    replayed: bool = Field(description="true when this link had already decided")
    approvals: ApprovalsView | None = Field(
        default=None,
        description="202: the approval was recorded; the node's rule needs more approvers",
    )


class ErrorDetail(_Response):
    code: str
    message: str
    field: str | None = None
    decision: DecisionView | None = None


class ErrorResponse(_Response):
    error: ErrorDetail
