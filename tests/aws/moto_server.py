"""A moto server on 127.0.0.1 that serves ONE request at a time.

`python -m tests.aws.moto_server` prints the port it listens on, then serves until killed.
moto's own `ThreadedMotoServer` and `moto_server` handle requests on several threads, and moto's
in-memory services are not safe under concurrent requests; a single-threaded werkzeug server
applies each request atomically, as the real services do, so separate worker processes can race
against it and only our conditional writes decide who wins.
"""

from __future__ import annotations

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def main() -> None:
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, app, threaded=False, processes=1, request_handler=MotoRequestHandler
    )
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
