"""One approver in its own process (like one Lambda instance): waits for a start signal, then
posts its decision through the resolver on the shared embedded store and prints the reply.

    python -m tests.api.race_approver HOME PUBLIC_URL PATH DECISION GO_FILE
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from durable_graph.api import build_resolver, local_api
from durable_graph.api.proxy import event_from_http, http_from_result
from durable_graph.backends.local import local_backend


def main(home: str, public_url: str, path: str, decision: str, go_file: str) -> int:
    root = Path(home)
    backend = local_backend(root)
    api = local_api(root, backend, public_url=public_url, graphs=("examples.email_approval:graph",))
    resolver = build_resolver(api)
    body = json.dumps({"decision": decision, "comment": f"{decision} from {decision}r"}).encode()
    event = event_from_http("POST", path, [("Content-Type", "application/json")], body)
    print("ready", flush=True)
    go = Path(go_file)
    while not go.exists():
        time.sleep(0.001)
    status, _, data = http_from_result(resolver.resolve(event, None))  # type: ignore[arg-type]
    print(json.dumps({"status": status, "body": json.loads(data)}), flush=True)
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:6]))
