"""The HTTP API: one powertools REST resolver, the same on Lambda and behind `durable-graph serve`.

Routes parse (pydantic), call a service, and shape a response; errors are mapped to HTTP once,
by the exception handlers at the bottom, by exception type (`errors.status_for`).

    POST /threads                      start a run (Standard Webhooks signature)
    GET  /threads/{id}                 status and values          (API key / IAM)
    GET  /threads/{id}/history         steps, newest first         (API key / IAM)
    GET  /threads/{id}/steps/{n}       any past state              (API key / IAM)
    POST /threads/{id}/resume          decide as a node, 409 if moved; 202 while a two-person
                                       rule waits for another approver (API key / IAM)
    GET  /threads/{id}/verify          check the chain, name the first bad step (API key / IAM)
    GET  /threads/{id}/diff?a=&b=      which fields changed between two steps (API key / IAM)
    GET  /threads/{id}/export          the audit bundle, verifiable offline (API key / IAM)
    POST /threads/{id}/fork            branch a new thread from a past step (API key / IAM)
    POST /threads/{id}/erase           erase values keeping their digests (API key / IAM)
    GET  /approvals/{token}            the approval page (reads only)
    POST /approvals/{token}            decide once (form or JSON), as the signed-in person if
                                       any; 202 while a two-person rule waits for another
    GET  /explorer...                  the ledger explorer's pages (`explorer.py`)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, ValidationError

from durable_graph.api import explorer, pages
from durable_graph.api.approvers import approver_of, pending_view
from durable_graph.api.config import Api
from durable_graph.api.errors import (
    BodyTooLarge,
    MalformedBody,
    RouteNotFound,
    error_body,
    status_for,
)
from durable_graph.api.identity import CONTEXT_KEY, caller, identify
from durable_graph.api.models import (
    DecisionRequest,
    DecisionResponse,
    DiffQuery,
    EraseRequest,
    ForkRequest,
    HistoryQuery,
    ResumeRequest,
    StartThreadRequest,
    StartThreadResponse,
)
from durable_graph.errors import DurableGraphError, InvalidInput

log = logging.getLogger("durable_graph.api")

JSON = "application/json"
HTML = "text/html; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
_STEP = re.compile(r"^[0-9]{1,9}$")
F = TypeVar("F", bound=Callable[..., Any])


def _handles(app: APIGatewayRestResolver, error: type[Exception]) -> Callable[[F], F]:
    """`@app.exception_handler(error)`, typed: powertools leaves that decorator unannotated."""
    register: Callable[[F], F] = cast(Any, app).exception_handler(error)
    return register


def raw_body(event: APIGatewayProxyEvent) -> bytes:
    """The body exactly as sent: webhook signatures are over these bytes."""
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _json(
    status: int, model: BaseModel, headers: dict[str, str] | None = None, *, sparse: bool = False
) -> Response[str]:
    """`sparse`: leave out fields the model was not given (a diff's absent old/new values)."""
    return Response(status, JSON, model.model_dump_json(exclude_unset=sparse), headers=headers)


def _query(model: type[BaseModel], event: APIGatewayProxyEvent) -> Any:
    """The query string parameters `model` declares (others are ignored, as elsewhere)."""
    params = event.query_string_parameters or {}
    return model.model_validate({k: params[k] for k in model.model_fields if k in params})


def _is_page(event: APIGatewayProxyEvent) -> bool:
    return event.path.startswith(("/approvals/", "/explorer"))


def _wants_html(event: APIGatewayProxyEvent) -> bool:
    """Browsers (Accept: text/html) get pages on the approval and explorer routes; programs
    get JSON."""
    return _is_page(event) and "text/html" in (event.headers.get("accept") or "")


def _parse(model: type[BaseModel], raw: bytes) -> Any:
    if not raw.strip():
        raise MalformedBody("a JSON body is required", field="body")
    return model.model_validate_json(raw)


def _parse_decision(event: APIGatewayProxyEvent) -> DecisionRequest:
    raw = raw_body(event)
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == FORM:
        try:
            form = parse_qs(raw.decode("utf-8"), max_num_fields=8, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            raise MalformedBody("the form body is not valid", field="body") from None
        return DecisionRequest.model_validate({k: v[0] for k, v in form.items()})
    result: DecisionRequest = _parse(DecisionRequest, raw)
    return result


def build_resolver(api: Api) -> APIGatewayRestResolver:
    """A resolver over `api`. Powertools keeps the current event in class state, so one process
    must resolve one event at a time (true on Lambda; `serve` holds a lock)."""
    app = APIGatewayRestResolver()
    limit = api.config.max_body_bytes

    def limit_body(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        """Refuse an oversized body before anything reads it."""
        if len(raw_body(app.current_event)) > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes", field="body")
        return next_middleware(app)

    def authenticated(
        app: APIGatewayRestResolver, next_middleware: NextMiddleware
    ) -> Response[Any]:
        app.context[CONTEXT_KEY] = api.config.auth.authenticate(app.current_event)
        return next_middleware(app)

    app.use(middlewares=[limit_body])

    # ---------------------------------------------------------------- threads

    @app.post("/threads")
    def start_thread() -> Response[str]:
        event = app.current_event
        raw = raw_body(event)
        webhook_id = api.webhooks.verify(raw, dict(event.headers))  # before parsing the body
        request: StartThreadRequest = _parse(StartThreadRequest, raw)
        head, replayed = api.threads.start(webhook_id, hashlib.sha256(raw).hexdigest(), request)
        body = StartThreadResponse(
            thread=api.threads.view(head), webhook_id=webhook_id, replayed=replayed
        )
        return _json(200 if replayed else 201, body)

    @app.get("/threads/<thread_id>", middlewares=[authenticated])
    def get_thread(thread_id: str) -> Response[str]:
        return _json(200, api.threads.view(api.threads.head(unquote(thread_id))))

    @app.get("/threads/<thread_id>/history", middlewares=[authenticated])
    def get_history(thread_id: str) -> Response[str]:
        query: HistoryQuery = _query(HistoryQuery, app.current_event)
        return _json(200, api.threads.history(unquote(thread_id), query))

    @app.get("/threads/<thread_id>/steps/<step>", middlewares=[authenticated])
    def get_step(thread_id: str, step: str) -> Response[str]:
        if not _STEP.match(step):
            raise InvalidInput("step must be a non-negative integer", field="step")
        return _json(200, api.threads.step(unquote(thread_id), int(step)))

    @app.post("/threads/<thread_id>/resume", middlewares=[authenticated])
    def resume_thread(thread_id: str) -> Response[str]:
        request: ResumeRequest = _parse(ResumeRequest, raw_body(app.current_event))
        approver = approver_of(caller(app))
        checkpoint, signed = api.threads.resume(unquote(thread_id), request, approver)
        return _json(200 if signed.complete else 202, api.threads.view(checkpoint))

    # ---------------------------------------------------------------- audit

    @app.get("/threads/<thread_id>/verify", middlewares=[authenticated])
    def verify_thread(thread_id: str) -> Response[str]:
        return _json(200, api.threads.verify(unquote(thread_id)))

    @app.get("/threads/<thread_id>/diff", middlewares=[authenticated])
    def diff_steps(thread_id: str) -> Response[str]:
        query: DiffQuery = _query(DiffQuery, app.current_event)
        return _json(200, api.threads.diff(unquote(thread_id), query), sparse=True)

    @app.get("/threads/<thread_id>/export", middlewares=[authenticated])
    def export_thread(thread_id: str) -> Response[str]:
        return _json(200, api.threads.export(unquote(thread_id)))

    @app.post("/threads/<thread_id>/fork", middlewares=[authenticated])
    def fork_thread(thread_id: str) -> Response[str]:
        request: ForkRequest = _parse(ForkRequest, raw_body(app.current_event))
        actor = caller(app).actor
        return _json(201, api.threads.view(api.threads.fork(unquote(thread_id), request, actor)))

    @app.post("/threads/<thread_id>/erase", middlewares=[authenticated])
    def erase_thread(thread_id: str) -> Response[str]:
        request: EraseRequest = _parse(EraseRequest, raw_body(app.current_event))
        return _json(200, api.threads.erase(unquote(thread_id), request, caller(app).actor))

    # ---------------------------------------------------------------- approvals

    @app.get("/approvals/<token>")
    def approval_page(token: str) -> Response[str]:
        page = api.approvals.page(token)
        return Response(200, HTML, pages.approval_page(page), headers=pages.security_headers())

    @app.post("/approvals/<token>")
    def decide(token: str) -> Response[str]:
        request = _parse_decision(app.current_event)
        who = identify(api.config.approver_auth, app.current_event)
        done = api.approvals.decide(token, request.decision, request.comment, who)
        headers = pages.security_headers()
        status = 200 if done.pending is None else 202
        if _wants_html(app.current_event):
            html = pages.result_page(
                done.decision, done.thread_status, done.replayed, pending=done.pending
            )
            return Response(status, HTML, html, headers=headers)
        body = DecisionResponse(
            decision=done.decision,
            thread_status=done.thread_status,
            replayed=done.replayed,
            approvals=pending_view(done.pending),
        )
        return _json(status, body, headers)

    if api.config.explorer_auth is not None:
        explorer.register(app, api, api.config.explorer_auth)

    # ---------------------------------------------------------------- errors, mapped once

    def error_response(error: BaseException) -> Response[str]:
        status = status_for(error)
        body = error_body(error)
        event = app.current_event
        headers = pages.security_headers() if _is_page(event) else {}
        if _wants_html(event):
            html = pages.error_page(status, body["error"]["code"], body["error"]["message"])
            return Response(status, HTML, html, headers=headers)
        return Response(status, JSON, json.dumps(body), headers=headers)

    @_handles(app, DurableGraphError)
    def on_domain_error(error: DurableGraphError) -> Response[str]:
        if status_for(error) >= 500:
            log.error("unexpected %s: %s", type(error).__name__, error)
        return error_response(error)

    @_handles(app, ValidationError)
    def on_invalid_body(error: ValidationError) -> Response[str]:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            # Say why: nesting past the parser's limit (200 levels) or a lone surrogate
            # ("\ud800") is refused here too, and neither shows at a glance in the bytes.
            detail = str(first.get("ctx", {}).get("error", ""))
            message = "the body is not valid JSON" + (f": {detail}" if detail else "")
            return error_response(MalformedBody(message, field="body"))
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return error_response(InvalidInput(f"{where}: {first['msg']}", field=where))

    @app.not_found
    def on_not_found(_: NotFoundError) -> Response[str]:
        return error_response(RouteNotFound("no such route"))

    @_handles(app, Exception)
    def on_bug(error: Exception) -> Response[str]:
        log.exception("unhandled error", exc_info=error)
        body = {"error": {"code": "internal", "message": "internal error"}}
        return Response(500, JSON, json.dumps(body))

    return app
