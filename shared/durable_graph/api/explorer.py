"""The ledger explorer's routes, registered on the API's resolver (`register`), so `serve` and
API Gateway serve the very same pages.

    GET  /explorer                          threads: status filter, id search, paged
    GET  /explorer/approvals                suspended threads, oldest first
    GET  /explorer/threads/{id}             graph, timeline (paged), state and inputs at ?step=
    GET  /explorer/threads/{id}/graph       the graph frame (Mermaid, vendored)
    GET  /explorer/threads/{id}/diff?a=&b=  the CLI's diff between two steps
    GET  /explorer/threads/{id}/verify      the CLI's verify, signed heads, key fingerprint
    GET  /explorer/threads/{id}/bundle      the audit bundle, as a download
    POST /explorer/threads/{id}/approval    a fresh approval link for a suspended thread
    GET  /explorer/static/{name}            stylesheet and scripts (public, same origin)
    GET|POST /explorer/login                the session token `serve` printed -> a cookie

Everything but `static` and `login` requires the explorer's authenticator (session cookie or
API key locally, a Cognito user on AWS). Pages read through the store only (`explorer_read`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api import explorer_pages as html
from durable_graph.api import explorer_read as read
from durable_graph.api.config import Api
from durable_graph.api.errors import Unauthorized
from durable_graph.api.explorer_auth import SessionAuth, session_cookie
from durable_graph.api.identity import CONTEXT_KEY, Authenticator
from durable_graph.bundle import build_bundle
from durable_graph.errors import InvalidInput, NotSuspended
from durable_graph.timetravel import diff
from durable_graph.verification import verify_thread

HTML = "text/html; charset=utf-8"
VERIFY_INLINE_STEPS = 200  # threads up to this long show their verification on their page
STATIC = {
    "explorer.css": "text/css; charset=utf-8",
    "explorer-graph.js": "text/javascript; charset=utf-8",
    "mermaid.min.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@cache
def _static(name: str) -> str:
    return resources.files("durable_graph.api").joinpath("static", name).read_text("utf-8")


def _page(body: str, status: int = 200, **extra: str) -> Response[str]:
    return Response(status, HTML, body, headers={**html.headers(), **extra})


def _wants_html(event: APIGatewayProxyEvent) -> bool:
    return "text/html" in (event.headers.get("accept") or event.headers.get("Accept") or "")


def register(app: APIGatewayRestResolver, api: Api, auth: Authenticator) -> None:
    """Add the explorer's routes to `app`, guarded by `auth`."""
    backend = api.config.backend
    method = "session" if isinstance(auth, SessionAuth) else "cognito"
    secure = api.config.public_base_url.startswith("https://")

    def signed_in(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        """A browser without a session gets the sign-in page (401), a program a JSON 401."""
        try:
            app.context[CONTEXT_KEY] = auth.authenticate(app.current_event)
        except Unauthorized:
            if not _wants_html(app.current_event):
                raise
            return _page(html.login_page("Sign in to see the ledger.", method=method), 401)
        return next_middleware(app)

    def guarded(path: str) -> Callable[[Callable[..., Response[str]]], Any]:
        """`@app.get(path)` behind the sign-in middleware."""
        register: Callable[[Callable[..., Response[str]]], Any] = app.get(
            path, middlewares=[signed_in]
        )
        return register

    def params() -> dict[str, str]:
        return dict(app.current_event.query_string_parameters or {})

    @app.get("/")
    def root() -> Response[str]:
        return Response(303, HTML, "", headers={"Location": "/explorer"})

    @app.get("/explorer/static/<name>")
    def static(name: str) -> Response[str]:
        if name not in STATIC:
            raise InvalidInput(f"no static file {name!r}", field="name")
        cache_headers = {
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(200, STATIC[name], _static(name), headers=cache_headers)

    @app.get("/explorer/login")
    def login_form() -> Response[str]:
        token = params().get("token")
        if token is not None:
            return _sign_in(token)
        return _page(html.login_page("Sign in to see the ledger.", method=method), 200)

    @app.post("/explorer/login")
    def login() -> Response[str]:
        raw = app.current_event.body or ""
        form = parse_qs(raw, max_num_fields=4)
        return _sign_in(form.get("token", [""])[0])

    def _sign_in(token: str) -> Response[str]:
        if isinstance(auth, SessionAuth) and auth.accepts(token):
            cookie = session_cookie(token, secure=secure)
            return Response(303, HTML, "", headers={"Location": "/explorer", "Set-Cookie": cookie})
        message = "That token is not this server's session token."
        return _page(html.login_page(message, method=method), 401)

    @guarded("/explorer")
    def threads() -> Response[str]:
        query = params()
        status, text = query.get("status", ""), query.get("q", "")
        page = read.list_threads(backend, status=status, query=text, cursor=query.get("cursor"))
        now = api.config.clock.now()
        return _page(html.threads_page(page, status=status, query=text, now=now))

    @guarded("/explorer/approvals")
    def approvals() -> Response[str]:
        page = read.inbox(backend, params().get("cursor"))
        return _page(html.inbox_page(page, now=api.config.clock.now()))

    @guarded("/explorer/threads/<thread_id>")
    def thread(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        query = params()
        before = read.step_number(query.get("before"), "before")
        thread_record, head = read.head_of(backend, tid)
        line = read.timeline(backend, tid, head.step, before)
        step = read.step_number(query.get("step"), "step")
        record, values = read.state_at(backend, tid, head.step if step is None else step)
        _, derived = read.drawing(backend, head, line.records)
        report = verify_thread(backend, tid) if head.step < VERIFY_INLINE_STEPS else None
        body = html.thread_page(
            thread=thread_record,
            head=head,
            line=line,
            record=record,
            values=values,
            io=read.io_of(backend, record),
            report=report,
            lineage=read.lineage(backend, thread_record, head),
            before=before,
            derived=derived,
        )
        return _page(body)

    @guarded("/explorer/threads/<thread_id>/graph")
    def graph(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        before = read.step_number(params().get("before"), "before")
        _, head = read.head_of(backend, tid)
        line = read.timeline(backend, tid, head.step, before)
        text, _ = read.drawing(backend, head, line.records)
        headers = html.headers(html.GRAPH_CSP, framed=True)
        return Response(200, HTML, html.graph_frame(head.graph.name, text), headers=headers)

    @guarded("/explorer/threads/<thread_id>/diff")
    def step_diff(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        query = params()
        a = read.step_number(query.get("a"), "a")
        b = read.step_number(query.get("b"), "b")
        if a is None or b is None:
            raise InvalidInput("pick two steps: a and b", field="a" if a is None else "b")
        return _page(html.diff_page(tid, diff(backend, tid, a, b)))

    @guarded("/explorer/threads/<thread_id>/verify")
    def verify(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        return _page(html.verify_page(tid, verify_thread(backend, tid)))

    @guarded("/explorer/threads/<thread_id>/bundle")
    def bundle(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        document = build_bundle(backend, tid).model_dump_json(indent=1)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tid)[:100]
        return Response(
            200,
            "application/json",
            document,
            headers={
                "Content-Disposition": f'attachment; filename="{safe}.audit.json"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.post("/explorer/threads/<thread_id>/approval", middlewares=[signed_in])
    def approval_link(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        _, head = read.head_of(backend, tid)
        if head.status != "suspended":
            raise NotSuspended(tid, head.status)
        link = api.approvals.links_for(head).get("approval")
        if link is None:
            raise InvalidInput(
                f"no approval link for {tid!r}: its graph has no approval policy here",
                field="thread_id",
            )
        return Response(303, HTML, "", headers={"Location": link, "Cache-Control": "no-store"})


__all__ = ["STATIC", "register"]
