"""`python -m tests.aws.worker_process THREAD [--seconds N]`: one worker process.

Polls the transition queue like the Lambda event source mapping and runs the real worker
handler on each message, until THREAD is no longer running (or time is up). Prints its poll
statistics as a JSON line. Several of these race against one moto server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from durable_graph.backends.aws import lambda_worker
from durable_graph.backends.aws.local_poller import EventSourcePoller
from functions.worker.handler import handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("thread_id")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    rt = lambda_worker.worker().rt
    poller = EventSourcePoller(rt.clients.sqs, rt.settings.queue_url, handler)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        head = rt.backend.checkpoints.head_checkpoint(args.thread_id)
        if head is not None and head.status != "running":
            break
        if poller.poll_once() == 0:
            time.sleep(0.02)
    stats = poller.stats
    print(
        json.dumps(
            {
                "records": stats.records,
                "failed": stats.failed_records,
                "crashed": stats.crashed_invocations,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
