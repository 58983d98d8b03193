"""The OpenAPI paths of the thread routes (start, read, resume) and the approval links; the
audit routes come from `openapi_audit.py`."""

from __future__ import annotations

from typing import Any

from durable_graph.api.models import (
    DecisionRequest,
    DecisionResponse,
    HistoryPage,
    ResumeRequest,
    StartThreadRequest,
    StartThreadResponse,
    StepView,
    ThreadView,
)
from durable_graph.api.openapi_audit import audit_paths
from durable_graph.api.openapi_parts import (
    AUTHENTICATED,
    FORM,
    HTML,
    JSON,
    STEP_SCHEMA,
    THREAD_ID,
    TOKEN,
    errors,
    ref,
    reply,
    webhook_headers,
)


def paths() -> dict[str, Any]:
    return {
        "/threads": {
            "post": {
                "operationId": "startThread",
                "summary": "Start a run (a signed Standard Webhook); idempotent per webhook id",
                "description": (
                    "The signature is checked over the raw body before the body is parsed. "
                    "The same webhook id returns the same thread and never starts a second run. "
                    "A `thread_id` that exists takes the input as its next turn when the "
                    "thread completed or failed (the same chain continues from START); while "
                    "it waits for a decision or runs: 409 `turn_refused`."
                ),
                "parameters": webhook_headers(),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref(StartThreadRequest)}},
                },
                "responses": {
                    "201": reply(StartThreadResponse, "the run (or the next turn) was started"),
                    "200": reply(StartThreadResponse, "this webhook id was already processed"),
                    **errors(400, 401, 409, 413),
                },
            }
        },
        "/threads/{thread_id}": {
            "get": {
                "operationId": "getThread",
                "summary": "Status and current values of a thread",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "responses": {
                    "200": reply(ThreadView, "the thread's head"),
                    **errors(401, 404),
                },
            }
        },
        "/threads/{thread_id}/history": {
            "get": {
                "operationId": "getHistory",
                "summary": "Every step of a thread, newest first, paged",
                "security": AUTHENTICATED,
                "parameters": [
                    THREAD_ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "description": "only steps before this one (a page's next_before)",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": reply(HistoryPage, "a page of steps"),
                    **errors(400, 401, 404),
                },
            }
        },
        "/threads/{thread_id}/steps/{step}": {
            "get": {
                "operationId": "getStep",
                "summary": "Any past state of a thread (time travel)",
                "security": AUTHENTICATED,
                "parameters": [
                    THREAD_ID,
                    {
                        "name": "step",
                        "in": "path",
                        "required": True,
                        "schema": STEP_SCHEMA,
                    },
                ],
                "responses": {
                    "200": reply(StepView, "the checkpoint"),
                    **errors(400, 401, 404),
                },
            }
        },
        "/threads/{thread_id}/resume": {
            "post": {
                "operationId": "resumeThread",
                "summary": "Inject a decision as a node (update_state), from the step you saw",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref(ResumeRequest)}},
                },
                "responses": {
                    "200": reply(ThreadView, "the decision is committed; the thread continues"),
                    "202": reply(
                        ThreadView,
                        "the caller's approval is recorded (`approvals`); the node's rule needs "
                        "more distinct approvers, and the thread stays suspended",
                    ),
                    **errors(400, 401, 403, 404, 409, 413),
                },
            }
        },
        **audit_paths(),
        "/approvals/{token}": {
            "get": {
                "operationId": "approvalPage",
                "summary": "The approval page: what is being approved, Approve / Reject",
                "description": "Changes nothing (mail scanners prefetch links).",
                "parameters": [TOKEN],
                "responses": {
                    "200": {
                        "description": "the page",
                        "content": {HTML: {"schema": {"type": "string"}}},
                    },
                    **errors(404, 410, html=True),
                },
            },
            "post": {
                "operationId": "decide",
                "summary": "Decide, once: the same link again returns the recorded outcome",
                "description": "As the signed-in person when there is one (the explorer's "
                "sign-in), whom the ledger then records; a link bound to a named approver "
                "refuses anyone else (403), and the interrupted node's `ApprovalRule` may "
                "require sign-in (401), refuse the requester (403), or need several distinct "
                "approvers (202 until the last).",
                "parameters": [TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {"schema": ref(DecisionRequest)},
                        FORM: {"schema": ref(DecisionRequest)},
                    },
                },
                "responses": {
                    "200": {
                        "description": "decided (or the recorded decision of this link)",
                        "content": {
                            JSON: {"schema": ref(DecisionResponse)},
                            HTML: {"schema": {"type": "string"}},
                        },
                    },
                    "202": {
                        "description": "this person's approval is recorded; the node's rule "
                        "needs more distinct approvers (`approvals`)",
                        "content": {
                            JSON: {"schema": ref(DecisionResponse)},
                            HTML: {"schema": {"type": "string"}},
                        },
                    },
                    **errors(400, 401, 403, 404, 409, 410, 413, html=True),
                },
            },
        },
    }
