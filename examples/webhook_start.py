"""Start a thread on a running `durable-graph serve` the way a webhook sender would.

    .venv/bin/durable-graph serve &                 # prints approval links as threads suspend
    .venv/bin/python examples/webhook_start.py --thread tx-web-1 --prompt "pay the supplier"

The body is signed with the Standard Webhooks scheme (HMAC-SHA256 over id, timestamp and raw
body) using the secret `serve` created in `$DURABLE_GRAPH_HOME/keys/webhook-secret`. Sending the
same `--webhook-id` twice returns the same thread and starts nothing new.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
import uuid

from durable_graph.api.webhooks import sign
from durable_graph.backends.local import home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--thread", help="thread id (derived from the webhook id if omitted)")
    parser.add_argument("--prompt", default="pay the new supplier before Friday")
    parser.add_argument("--webhook-id", default=f"msg_{uuid.uuid4().hex}")
    args = parser.parse_args()

    secret = (home() / "keys" / "webhook-secret").read_text(encoding="utf-8").strip()
    payload: dict[str, object] = {"input": {"user_prompt": args.prompt}}
    if args.thread:
        payload["thread_id"] = args.thread
    body = json.dumps(payload).encode("utf-8")
    headers = sign(secret, args.webhook_id, int(time.time()), body)
    request = urllib.request.Request(
        f"{args.url.rstrip('/')}/threads",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.dumps(json.loads(response.read()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
