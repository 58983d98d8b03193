"""The API's OpenAPI 3.1 document, generated from the pydantic models so it cannot drift.

`python -m durable_graph.api.openapi` rewrites `openapi.yaml` beside this file; a test checks
the committed file equals what this module generates, validates it, and fuzzes the API from it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from durable_graph.api.models import (
    DecisionRequest,
    DecisionResponse,
    DiffView,
    EraseRequest,
    EraseResponse,
    ErrorResponse,
    ForkRequest,
    HistoryPage,
    ResumeRequest,
    StartThreadRequest,
    StartThreadResponse,
    StepView,
    ThreadView,
    VerifyView,
)
from durable_graph.api.webhooks import TOLERANCE_SECONDS
from durable_graph.bundle import Bundle

PATH = Path(__file__).with_name("openapi.yaml")
REF = "#/components/schemas/{model}"
JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"

_REQUESTS: list[type[BaseModel]] = [
    StartThreadRequest,
    ResumeRequest,
    DecisionRequest,
    ForkRequest,
    EraseRequest,
]
_RESPONSES: list[type[BaseModel]] = [
    StartThreadResponse,
    ThreadView,
    HistoryPage,
    StepView,
    DecisionResponse,
    VerifyView,
    DiffView,
    Bundle,
    EraseResponse,
    ErrorResponse,
]

ERRORS = {
    400: "invalid or malformed request (nothing stored changed)",
    401: "missing or bad credentials or webhook signature; or the node's approval rule needs "
    "a signed-in approver (sign_in_required)",
    403: "the node's approval rule refuses this person: the requester, or someone who already "
    "approved (approval_refused; nothing stored changed)",
    404: "no such thread or step; for approval links: not valid (one answer for every cause)",
    409: "conflict: the thread moved on, is not suspended, or was already decided",
    410: "the approval link expired or the thread moved on",
    413: "body larger than the limit (256 KB by default)",
    422: "the audit bundle is too large for one response: export it with the CLI",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(model)}}}


def _errors(*codes: int, html: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        content: dict[str, Any] = {JSON: {"schema": _ref(ErrorResponse)}}
        if html:
            content[HTML] = {"schema": {"type": "string"}}
        out[str(code)] = {"description": ERRORS[code], "content": content}
    return out


def _path_param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


THREAD_ID = _path_param("thread_id", "the thread id", minLength=1, maxLength=200)
STEP_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 999999999}


def _query_param(name: str, description: str, schema: dict[str, Any], required: bool) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _audit_paths() -> dict[str, Any]:
    """The time-travel and audit routes: the CLI's verify, diff, export and fork over HTTP."""
    thread_b = {"type": "string", "minLength": 1, "maxLength": 200}
    return {
        "/threads/{thread_id}/verify": {
            "get": {
                "operationId": "verifyThread",
                "summary": "Recompute every hash, link, payload digest and signature",
                "description": "200 with `ok: false` and the first bad step when the chain fails.",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "responses": {
                    "200": _json(VerifyView, "the verification report"),
                    **_errors(401, 404),
                },
            }
        },
        "/threads/{thread_id}/diff": {
            "get": {
                "operationId": "diffSteps",
                "summary": "Which state fields changed from step a to step b",
                "security": AUTHENTICATED,
                "parameters": [
                    THREAD_ID,
                    _query_param("a", "the earlier step", STEP_SCHEMA, True),
                    _query_param("b", "the later step", STEP_SCHEMA, True),
                    _query_param("thread_b", "take step b from this thread", thread_b, False),
                ],
                "responses": {
                    "200": _json(DiffView, "the changed and unchanged fields"),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/threads/{thread_id}/export": {
            "get": {
                "operationId": "exportThread",
                "summary": "The audit bundle: records, payloads, signatures, public key",
                "description": "Verifies offline: `durable-graph verify --bundle FILE`.",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "responses": {
                    "200": _json(Bundle, "the bundle"),
                    **_errors(401, 404, 422),
                },
            }
        },
        "/threads/{thread_id}/fork": {
            "post": {
                "operationId": "forkThread",
                "summary": "Start a new thread from a past step (the workers run it)",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref(ForkRequest)}},
                },
                "responses": {
                    "201": _json(ThreadView, "the fork's step 0 is committed"),
                    **_errors(400, 401, 404, 409, 413),
                },
            }
        },
        "/threads/{thread_id}/erase": {
            "post": {
                "operationId": "eraseThread",
                "summary": "Erase values (and their salts) keeping their digests; signed record",
                "description": "The CLI's `erase`. 200 with the erasure record written "
                "(`erased: false`, no record, when nothing was left to erase). Verification "
                "still passes afterwards and lists the erased fields "
                "(docs/erasure-and-retention.md).",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref(EraseRequest)}},
                },
                "responses": {
                    "200": _json(EraseResponse, "the signed erasure record"),
                    **_errors(400, 401, 404, 413),
                },
            }
        },
    }


TOKEN = _path_param("token", "the approval token from the link", minLength=1, maxLength=2048)
AUTHENTICATED: list[dict[str, list[str]]] = [{"apiKey": []}, {"sigv4": []}]


def _webhook_headers() -> list[dict[str, Any]]:
    described = {
        "webhook-id": "unique id of this delivery; a repeated id starts nothing new",
        "webhook-timestamp": f"Unix seconds; refused beyond ±{TOLERANCE_SECONDS} s",
        "webhook-signature": (
            "`v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`; several may be space-separated"
        ),
    }
    return [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in described.items()
    ]


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
                "parameters": _webhook_headers(),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref(StartThreadRequest)}},
                },
                "responses": {
                    "201": _json(StartThreadResponse, "the run (or the next turn) was started"),
                    "200": _json(StartThreadResponse, "this webhook id was already processed"),
                    **_errors(400, 401, 409, 413),
                },
            }
        },
        "/threads/{thread_id}": {
            "get": {
                "operationId": "getThread",
                "summary": "Status and current values of a thread",
                "security": AUTHENTICATED,
                "parameters": [THREAD_ID],
                "responses": {"200": _json(ThreadView, "the thread's head"), **_errors(401, 404)},
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
                    "200": _json(HistoryPage, "a page of steps"),
                    **_errors(400, 401, 404),
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
                "responses": {"200": _json(StepView, "the checkpoint"), **_errors(400, 401, 404)},
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
                    "content": {JSON: {"schema": _ref(ResumeRequest)}},
                },
                "responses": {
                    "200": _json(ThreadView, "the decision is committed; the thread continues"),
                    "202": _json(
                        ThreadView,
                        "the caller's approval is recorded (`approvals`); the node's rule needs "
                        "more distinct approvers, and the thread stays suspended",
                    ),
                    **_errors(400, 401, 403, 404, 409, 413),
                },
            }
        },
        **_audit_paths(),
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
                    **_errors(404, 410, html=True),
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
                        JSON: {"schema": _ref(DecisionRequest)},
                        FORM: {"schema": _ref(DecisionRequest)},
                    },
                },
                "responses": {
                    "200": {
                        "description": "decided (or the recorded decision of this link)",
                        "content": {
                            JSON: {"schema": _ref(DecisionResponse)},
                            HTML: {"schema": {"type": "string"}},
                        },
                    },
                    "202": {
                        "description": "this person's approval is recorded; the node's rule "
                        "needs more distinct approvers (`approvals`)",
                        "content": {
                            JSON: {"schema": _ref(DecisionResponse)},
                            HTML: {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 404, 409, 410, 413, html=True),
                },
            },
        },
    }


def document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in _REQUESTS]
    models += [(m, "serialization") for m in _RESPONSES]
    _, schemas = models_json_schema(models, ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "durable-graph API",
            "version": "1",
            "description": (
                "Start runs from signed webhooks, read and resume threads, and decide approvals "
                "through signed, single-use links. Served by the `api` Lambda behind API "
                "Gateway, or locally by `durable-graph serve`. Errors are "
                '`{"error": {"code", "message", "field"?}}`.'
            ),
        },
        "paths": paths(),
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "locally: the key in $DURABLE_GRAPH_HOME/keys/api-key",
                },
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "on AWS: IAM (SigV4) through API Gateway",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            },
        },
    }


def render() -> str:
    import yaml  # type: ignore[import-untyped]

    text: str = yaml.safe_dump(document(), sort_keys=False, width=100, allow_unicode=True)
    return "# Generated by `python -m durable_graph.api.openapi`; do not edit by hand.\n" + text


def main() -> int:
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
