"""Errors of the HTTP layer, and the one table that gives every error its HTTP status.

The API maps exceptions to responses in exactly one place (`app.py`'s exception handlers), by
exception *type* through `status_for`: never by reading an exception's message.
"""

from __future__ import annotations

from typing import Any

from durable_graph.approval_rule import ApprovalRefused, SignInRequired
from durable_graph.errors import (
    DurableGraphError,
    GraphMismatch,
    InvalidInput,
    NotSuspended,
    PayloadTooLarge,
    StaleHead,
    StepNotFound,
    ThreadExists,
    ThreadFailed,
    ThreadNotFound,
    TurnRefused,
    UnknownNode,
    UserError,
)


class ApiError(DurableGraphError):
    """An error the API answers with `status`; `code` is the stable machine-readable name."""

    status: int = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, field: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or {}


class ExportTooLarge(ApiError):
    """The audit bundle would not fit in one API response: the CLI exports it to a file."""

    status = 422
    code = "export_too_large"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class RouteNotFound(ApiError):
    status = 404
    code = "not_found"


class LinkNotFound(ApiError):
    """Tampered, forged, unknown or revoked link: one answer, no hint which check failed."""

    status = 404
    code = "link_not_found"

    def __init__(self) -> None:
        super().__init__("this approval link is not valid")


class LinkGone(ApiError):
    """The link was real but can no longer decide: expired, or the thread moved on."""

    status = 410
    code = "link_gone"


class LinkExpired(LinkGone):
    code = "link_expired"

    def __init__(self) -> None:
        super().__init__("this approval link has expired")


class LinkStale(LinkGone):
    code = "link_stale"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"the thread moved on{detail}; this link can no longer decide")


class DecisionConflict(ApiError):
    """Someone else decided first; `detail["decision"]` is the decision that won."""

    status = 409
    code = "already_decided"


class WebhookConflict(ApiError):
    status = 409
    code = "webhook_id_reused"


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class MalformedBody(ApiError):
    status = 400
    code = "malformed_body"


class ServiceMisconfigured(ApiError):
    """The deployment's configuration is unusable (a malformed secret, a missing setting): no
    request can be served until an operator fixes it, so each is answered 503, not 500."""

    status = 503
    code = "misconfigured"


# Domain errors (errors.py) by what they mean to an HTTP client. Looked up along the MRO, so a
# subclass inherits its parent's status unless listed itself.
_DOMAIN_STATUS: dict[type[BaseException], int] = {
    ApprovalRefused: 403,  # this person may not decide this (approval_rule)
    SignInRequired: 401,
    ThreadNotFound: 404,
    StepNotFound: 404,
    UnknownNode: 400,
    PayloadTooLarge: 413,
    InvalidInput: 400,
    ThreadExists: 409,
    TurnRefused: 409,
    NotSuspended: 409,
    StaleHead: 409,
    GraphMismatch: 409,
    UserError: 400,
    # The API only commits and leaves running to workers, so this cannot arise from a route
    # today; should one ever run a thread in-request, a failure it records is the thread's
    # state (resumable), not a server fault.
    ThreadFailed: 409,
}


def status_for(error: BaseException) -> int:
    """The HTTP status of a raised error; 500 for anything not raised on purpose."""
    if isinstance(error, ApiError):
        return error.status
    for cls in type(error).__mro__:
        if cls in _DOMAIN_STATUS:
            return _DOMAIN_STATUS[cls]
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """`{"error": {"code", "message", "field"?, ...detail}}` for any error we raised on purpose."""
    code = getattr(error, "code", "error")
    body: dict[str, Any] = {"code": code, "message": str(error)}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    if isinstance(error, ApiError):
        body.update(error.detail)
    return {"error": body}
