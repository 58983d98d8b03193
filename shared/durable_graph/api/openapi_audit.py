"""The OpenAPI paths of the time-travel and audit routes (verify, diff, export, fork, erase)."""

from __future__ import annotations

from typing import Any

from durable_graph.api.models import (
    DiffView,
    EraseRequest,
    EraseResponse,
    ForkRequest,
    ThreadView,
    VerifyView,
)
from durable_graph.api.openapi_parts import (
    AUTHENTICATED,
    JSON,
    STEP_SCHEMA,
    THREAD_ID,
    errors,
    query_param,
    ref,
    reply,
)
from durable_graph.bundle import Bundle


def audit_paths() -> dict[str, Any]:
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
                    "200": reply(VerifyView, "the verification report"),
                    **errors(401, 404),
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
                    query_param("a", "the earlier step", STEP_SCHEMA, True),
                    query_param("b", "the later step", STEP_SCHEMA, True),
                    query_param("thread_b", "take step b from this thread", thread_b, False),
                ],
                "responses": {
                    "200": reply(DiffView, "the changed and unchanged fields"),
                    **errors(400, 401, 404),
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
                    "200": reply(Bundle, "the bundle"),
                    **errors(401, 404, 422),
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
                    "content": {JSON: {"schema": ref(ForkRequest)}},
                },
                "responses": {
                    "201": reply(ThreadView, "the fork's step 0 is committed"),
                    **errors(400, 401, 404, 409, 413),
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
                    "content": {JSON: {"schema": ref(EraseRequest)}},
                },
                "responses": {
                    "200": reply(EraseResponse, "the signed erasure record"),
                    **errors(400, 401, 404, 413),
                },
            }
        },
    }
