"""The building blocks of the OpenAPI document (`openapi.py`): media types, schema references,
the error responses by status, and the parameters several routes share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from durable_graph.api.models import ErrorResponse
from durable_graph.api.webhooks import TOLERANCE_SECONDS

REF = "#/components/schemas/{model}"
JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"

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


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def reply(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(model)}}}


def errors(*codes: int, html: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        content: dict[str, Any] = {JSON: {"schema": ref(ErrorResponse)}}
        if html:
            content[HTML] = {"schema": {"type": "string"}}
        out[str(code)] = {"description": ERRORS[code], "content": content}
    return out


def path_param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


THREAD_ID = path_param("thread_id", "the thread id", minLength=1, maxLength=200)
STEP_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 999999999}


def query_param(name: str, description: str, schema: dict[str, Any], required: bool) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


TOKEN = path_param("token", "the approval token from the link", minLength=1, maxLength=2048)
AUTHENTICATED: list[dict[str, list[str]]] = [{"apiKey": []}, {"sigv4": []}]


def webhook_headers() -> list[dict[str, Any]]:
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
