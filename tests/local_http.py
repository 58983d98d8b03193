"""A test's own HTTP server on 127.0.0.1, served from a thread for as long as a block runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer


@contextmanager
def in_background(server: HTTPServer) -> Iterator[str]:
    """`server` serving from a daemon thread for the block (which gets its base URL,
    `http://127.0.0.1:PORT`), then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
