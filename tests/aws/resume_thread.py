"""`python -m tests.aws.resume_thread THREAD --values JSON --as-node NODE [--expected-step N]
[--barrier FILE]`: approve a suspended thread from another process, as the API would.

Reads the functions' environment (table, bucket, queue...) and `AWS_ENDPOINT_URL`. With
`--barrier`, builds everything first, says so by creating `FILE.<actor>.ready`, then waits for
FILE to exist before resuming, so that several approvers can be released at the same moment.
Prints a JSON line; exits 0 when the decision was committed, 3 when another decision won (stale
head / not suspended).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from durable_graph.backends.aws.factory import runtime
from durable_graph.checkpoint import Actor
from durable_graph.errors import NotSuspended, StaleHead


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("thread_id")
    parser.add_argument("--values", required=True)
    parser.add_argument("--as-node", required=True)
    parser.add_argument("--expected-step", type=int)
    parser.add_argument("--barrier")
    parser.add_argument("--actor", default="approver")
    args = parser.parse_args()
    rt = runtime()
    rt.backend.checkpoints.head_checkpoint(args.thread_id)  # warm the connection
    if args.barrier:
        Path(f"{args.barrier}.{args.actor}.ready").touch()
        while not Path(args.barrier).exists():
            time.sleep(0.005)
    try:
        checkpoint = rt.graph.resume(
            args.thread_id,
            values=json.loads(args.values),
            as_node=args.as_node,
            expected_step=args.expected_step,
            actor=Actor(kind="human", id=args.actor),
            run=False,
        )
    except (StaleHead, NotSuspended) as exc:
        print(json.dumps({"ok": False, "error": exc.code, "actor": args.actor}))
        return 3
    print(json.dumps({"ok": True, "step": checkpoint.step, "actor": args.actor}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
