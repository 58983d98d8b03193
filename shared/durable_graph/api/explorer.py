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
    GET|POST /explorer/login                locally: the session token `serve` printed -> a
                                            cookie; on AWS: off to the hosted UI (`signin.py`)
    GET  /explorer/callback                 on AWS: the hosted UI's code -> the session cookie
    GET  /explorer/logout                   forget the session (and the hosted UI's, on AWS)

Everything but `static`, `login`, `callback` and `logout` requires the explorer's
authenticator (session cookie or API key locally, a signed-in Cognito user on AWS); a browser
without one is sent to sign in, a program gets a JSON 401, neither gets data. Pages read
through the store only (`explorer_read`).

Pages are written with root paths (`/explorer/...`); on API Gateway the API lives under its
stage (`/v1`), so every page's links are rooted under the public base URL's path here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from durable_graph.api import explorer_pages as html
from durable_graph.api import explorer_read as read
from durable_graph.api.config import Api
from durable_graph.api.errors import Unauthorized
from durable_graph.api.explorer_auth import OidcAuth, SessionAuth, cookie_value, session_cookie
from durable_graph.api.explorer_html import GRAPH_CSP, headers
from durable_graph.api.explorer_thread_page import graph_frame, thread_page
from durable_graph.api.identity import CONTEXT_KEY, Authenticator, caller
from durable_graph.api.signin import ID_COOKIE, SIGNIN_COOKIE
from durable_graph.approval_record import approvals_of
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


def rooted(body: str, root: str) -> str:
    """`body` with its root-path links (`href="/explorer...`) under `root` (`/v1`, or "")."""
    if not root:
        return body
    for attribute in ('href="', 'action="', 'src="'):
        body = body.replace(f"{attribute}/explorer", f"{attribute}{root}/explorer")
    return body


def _redirect(location: str, *cookies: str) -> Response[str]:
    headers: dict[str, str | list[str]] = {"Location": location, "Cache-Control": "no-store"}
    if cookies:
        headers["Set-Cookie"] = list(cookies)
    return Response(303, HTML, "", headers=headers)


def _wants_html(event: APIGatewayProxyEvent) -> bool:
    return "text/html" in (event.headers.get("accept") or event.headers.get("Accept") or "")


def register(app: APIGatewayRestResolver, api: Api, auth: Authenticator) -> None:
    """Add the explorer's routes to `app`, guarded by `auth`."""
    backend = api.config.backend
    method = "session" if isinstance(auth, SessionAuth) else "oidc"
    base = api.config.public_base_url
    secure = base.startswith("https://")
    root = urlsplit(base).path.rstrip("/")

    def _page(body: str, status: int = 200, **extra: str) -> Response[str]:
        return Response(status, HTML, rooted(body, root), headers={**headers(), **extra})

    def signed_in(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        """A browser without a session is sent to sign in (locally the sign-in page, 401; on
        AWS the hosted UI, coming back here after), a program gets a JSON 401."""
        event = app.current_event
        try:
            app.context[CONTEXT_KEY] = auth.authenticate(event)
        except Unauthorized:
            if not _wants_html(event):
                raise
            if isinstance(auth, OidcAuth) and event.http_method == "GET":
                here = event.path + (f"?{_query_string(event)}" if _query_string(event) else "")
                return _redirect(f"{base}/explorer/login?next={quote(here, safe='')}")
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
    def home() -> Response[str]:
        return Response(303, HTML, "", headers={"Location": f"{root}/explorer"})

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
        if isinstance(auth, OidcAuth):
            location, attempt = auth.hosted_ui.begin(params().get("next"))
            return _redirect(location, attempt)
        token = params().get("token")
        if token is not None:
            return _sign_in(token)
        return _page(html.login_page("Sign in to see the ledger.", method=method), 200)

    @app.get("/explorer/callback")
    def callback() -> Response[str]:
        """The hosted UI sends the browser back here with a code: it becomes the session."""
        if not isinstance(auth, OidcAuth):
            raise InvalidInput("this server signs in with its session token", field="path")
        ui = auth.hosted_ui
        remembered = cookie_value(app.current_event, SIGNIN_COOKIE)
        try:
            id_token, next_path = ui.finish(params(), remembered)
            auth.identity(id_token)  # verified before it becomes a cookie
        except Unauthorized as exc:
            body = html.login_page(str(exc), method=method)
            return _page(body, 401)
        cookie = ui.session_cookie(id_token, auth.seconds_left(id_token))
        return _redirect(f"{base}{next_path}", cookie, ui.clear(SIGNIN_COOKIE))

    @app.get("/explorer/logout")
    def logout() -> Response[str]:
        if isinstance(auth, OidcAuth):
            return _redirect(auth.hosted_ui.logout_url(), auth.hosted_ui.clear(ID_COOKIE))
        cleared = session_cookie("", secure=secure, max_age=0, path=f"{root}/")
        return _redirect(f"{root}/explorer/login", cleared)

    @app.post("/explorer/login")
    def login() -> Response[str]:
        raw = app.current_event.body or ""
        form = parse_qs(raw, max_num_fields=4)
        return _sign_in(form.get("token", [""])[0])

    def _sign_in(token: str) -> Response[str]:
        if isinstance(auth, SessionAuth) and auth.accepts(token):
            cookie = session_cookie(token, secure=secure, path=f"{root}/")
            return _redirect(f"{root}/explorer", cookie)
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
        _, derived = read.drawing(backend, head, line.records, api.shapes())
        report = verify_thread(backend, tid) if head.step < VERIFY_INLINE_STEPS else None
        body = thread_page(
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
            approvals=approvals_of(backend, record),
        )
        return _page(body)

    @guarded("/explorer/threads/<thread_id>/graph")
    def graph(thread_id: str) -> Response[str]:
        tid = unquote(thread_id)
        before = read.step_number(params().get("before"), "before")
        _, head = read.head_of(backend, tid)
        line = read.timeline(backend, tid, head.step, before)
        text, _ = read.drawing(backend, head, line.records, api.shapes())
        frame_headers = headers(GRAPH_CSP, framed=True)
        frame = rooted(graph_frame(head.graph.name, text), root)
        return Response(200, HTML, frame, headers=frame_headers)

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
        link = api.approvals.link_for(head, caller(app))
        if link is None:
            raise InvalidInput(
                f"no approval link for {tid!r}: its graph has no approval policy here, or "
                "names approvers you are not one of",
                field="thread_id",
            )
        return Response(303, HTML, "", headers={"Location": link, "Cache-Control": "no-store"})


def _query_string(event: APIGatewayProxyEvent) -> str:
    return urlencode(event.query_string_parameters or {})


__all__ = ["STATIC", "register", "rooted"]
