"""`durable-graph serve`: the HTTP API on the embedded store, plus the local worker.

Each HTTP request becomes the API Gateway proxy event Lambda would receive and goes through the
very same resolver (`durable_graph.api`), so what a newcomer clicks through locally is the code
that runs on AWS. The worker drains the local queue in a background thread, so a thread started
or approved over HTTP moves on without any other process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, cast

from durable_graph.backends.local import home
from durable_graph.cli.common import backend
from durable_graph.ports.notifier import Notification, Notifier
from durable_graph.worker import Worker

# API Gateway refuses bodies above 10 MB before they reach Lambda; serve does the same here.
# The API's own, smaller limit (413 with a JSON error) applies inside the resolver.
GATEWAY_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_GRAPH = "examples.email_approval:graph"


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the HTTP API and run the worker, locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument(
        "--public-url", help="base of approval links (default http://HOST:PORT); never the Host"
    )
    serve.add_argument(
        "--graph",
        action="append",
        dest="graphs",
        help=f"a graph POST /threads may start (repeatable; default {DEFAULT_GRAPH})",
    )
    serve.add_argument("--no-worker", action="store_true", help="serve the API only")
    serve.add_argument("--concurrency", type=int, default=4, help="worker task concurrency")
    serve.set_defaults(handler=cmd_serve)


class AnnouncingNotifier:
    """The outbox notifier, plus a line in the serve log with the approval link."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner

    def notify(self, notification: Notification) -> None:
        self.inner.notify(notification)
        link = notification.links.get("approval", "(no approval link)")
        print(f"notification: {notification.summary}: {link}", file=sys.stderr, flush=True)

    def close(self) -> None:
        closer = getattr(self.inner, "close", None)
        if callable(closer):
            closer()


def make_handler(resolve: Any) -> type[BaseHTTPRequestHandler]:
    from durable_graph.api.proxy import event_from_http, http_from_result

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "durable-graph"

        def _handle(self) -> None:
            length_header = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding"):
                return self._plain(411, "length_required", "send a Content-Length body")
            length = int(length_header) if length_header and length_header.isdigit() else 0
            if length > GATEWAY_MAX_BYTES:
                self.close_connection = True
                return self._plain(413, "body_too_large", "the body is larger than 10 MB")
            body = self.rfile.read(length) if length else b""
            event = event_from_http(
                self.command,
                self.path,
                self.headers.items(),
                body,
                source_ip=self.client_address[0],
            )
            # Powertools keeps the current event in class state: one event at a time.
            with lock:
                result = resolve(event, cast(Any, None))
            status, headers, data = http_from_result(result)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _plain(self, status: int, code: str, message: str) -> None:
            data = json.dumps({"error": {"code": code, "message": message}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def __getattr__(self, name: str) -> Any:
            """Every method (`do_GET`, `do_TRACE`, ...) goes to the resolver, as on API Gateway:
            it answers the ones no route takes with a JSON 404."""
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: the API needs the `api` extra (powertools, standardwebhooks), which the
    # other commands do not, and every command pays for what the parser imports.
    from durable_graph.api import build_resolver, local_api
    from durable_graph.api.explorer_auth import new_session_token
    from durable_graph.api.local import key_paths

    store = backend(args.store)
    store.notifier = AnnouncingNotifier(store.notifier)
    server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    public_url = (args.public_url or f"http://{host}:{port}").rstrip("/")
    session = new_session_token()
    api = local_api(
        home(),
        store,
        public_url=public_url,
        graphs=tuple(args.graphs or [DEFAULT_GRAPH]),
        explorer_token=session,
    )
    api.publish_shapes()  # the explorer draws graphs from the store
    server.RequestHandlerClass = make_handler(build_resolver(api).resolve)
    server.daemon_threads = True

    stop = threading.Event()
    worker_thread = None
    if not args.no_worker:
        worker = Worker(store, api.engine, concurrency=args.concurrency)
        worker_thread = threading.Thread(
            target=worker.run,
            kwargs={"until_idle": False, "settled": stop.is_set, "poll_interval": 0.05},
            name="durable-graph-worker",
            daemon=True,
        )
        worker_thread.start()

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    paths = key_paths(home())
    print(f"durable-graph serve: listening on http://{host}:{port}", flush=True)
    print(f"  approval links start with {public_url}/approvals/", flush=True)
    print(f"  API key (x-api-key header):   {paths['api_key']}", flush=True)
    print(f"  webhook secret (POST /threads): {paths['webhook']}", flush=True)
    print(f"  worker: {'off' if args.no_worker else 'on'}", flush=True)
    # Printed once, like a notebook server's token: whoever reads this log may open the ledger.
    print(f"  explorer: http://{host}:{port}/explorer/login?token={session}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
        if worker_thread is not None:
            worker_thread.join(timeout=10)
        store.close()
    return 0
