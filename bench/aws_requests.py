"""AWS requests, bytes and list-price cost per transition of the serverless runtime, on moto.

A thread loops one node (`step`) that rewrites a `blob` of 2 KB, 50 KB or 500 KB at every step
(the worst case: a new value each step); the rows marked `n` keep the same state but change only
a counter (a step's write follows its change, not the state: record format 2). Every transition
runs through the real path: the Lambda event source mapping's receive (emulated by
`local_poller`, batch size 1) → the worker handler → DynamoDB / S3 / SQS through boto3 → the
mapping's delete. botocore event hooks (`before-call` /
`after-call`) on every client count each AWS request per service and operation, and the bytes
sent. Two windows of ten transitions are measured: from step 10 and from step 1,000 of the same
thread (the thread is run to step 1,010), so any growth with history length would show.

Billable requests per transition = Lambda invocations (1 per message) + DynamoDB requests + SQS
requests (each 64 KB chunk of a payload is billed as one request) + S3 requests. The cost per
million transitions uses these list prices (us-east-1, on-demand, 2025):

    Lambda       $0.20 per 1M requests + $0.0000166667 per GB-s; 128 MB and an ASSUMED 50 ms per
                 transition (the time measured here runs against moto in-process and says
                 nothing about Lambda; it is printed for reference only)
    DynamoDB     $0.625 per 1M write request units (1 WRU per started 1 KB of item written),
                 $0.125 per 1M read request units (1 RRU per started 4 KB, strongly consistent)
    SQS FIFO     $0.50 per 1M requests (per 64 KB chunk)
    S3           $5.00 per 1M PUT, $0.40 per 1M GET
    Step Functions Standard: $25 per 1M state transitions (the baseline)

Not counted: the event source mapping's empty long polls (a fixed cost per queue, not per
transition), storage (GB-month), data transfer, CloudWatch logs.

    PYTHONPATH=. .venv/bin/python bench/aws_requests.py [--far-step 1000] [--window 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import statistics
import string
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tests.loops import loop_graph

GRAPH_PATH = "bench.aws_requests:graph"

# ---------------------------------------------------------------- the measured graph


class LoopState(BaseModel):
    n: int = 0
    stop_at: int = 0
    size: int = 2048
    blob: str = ""
    rewrite: bool = True  # False: the blob is set once and each step changes only `n`


_BASES: dict[int, str] = {}


def words(size: int) -> str:
    """`size` bytes of pseudo-random lowercase words, the same every run. zlib keeps about 60%
    of such text, more than of English prose, so a store that compresses its rows is not
    flattered (as it would be by a repeated phrase, which zlib shrinks to nothing)."""
    rng = random.Random(size)
    out: list[str] = []
    length = 0
    while length < size:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def blob_for(size: int, n: int) -> str:
    """A `size`-byte value that differs from the previous step's (two variants, alternating, so
    moto's memory stays bounded while every step still writes a value unlike its parent's)."""
    base = _BASES.setdefault(size, words(size - 1))
    return ("AB"[n % 2]) + base


def step(state: LoopState) -> dict[str, Any]:
    if not state.rewrite:
        return {"n": state.n + 1}
    return {"n": state.n + 1, "blob": blob_for(state.size, state.n + 1)}


graph = loop_graph(
    LoopState, "step", step, more=lambda state: state.n < state.stop_at, name=GRAPH_PATH
)

# ---------------------------------------------------------------- prices (USD)

LAMBDA_PER_REQUEST = 0.20e-6
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_MEMORY_GB = 128 / 1024
LAMBDA_ASSUMED_SECONDS = 0.050
DDB_PER_WRU = 0.625e-6
DDB_PER_RRU = 0.125e-6
SQS_FIFO_PER_REQUEST = 0.50e-6
S3_PER_PUT = 5.00e-6
S3_PER_GET = 0.40e-6
STEP_FUNCTIONS_PER_TRANSITION = 25e-6
# Lambda durable functions: $8.00 per million durable operations (a step, a wait, a callback;
# the rate in the Lambda pricing page's example) and $0.25 per GB of state data written; the
# function's own requests and GB-seconds come on top. Retention per GB-month is not counted.
DURABLE_FUNCTIONS_PER_OPERATION = 8e-6
DURABLE_FUNCTIONS_PER_GB_WRITTEN = 0.25
SQS_CHUNK = 64 * 1024

# ---------------------------------------------------------------- counting


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings and numbers as text, binary
    as its bytes)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        for kind, raw in value.items():
            if kind in ("S", "N"):
                total += len(str(raw).encode())
            elif kind == "B":
                total += len(raw)
            else:
                total += len(json.dumps(raw))
    return total


@dataclass
class Meter:
    """Requests, units and bytes since the last `reset`."""

    requests: Counter[str] = field(default_factory=Counter)
    sqs_chunks: int = 0
    wru: int = 0
    rru: int = 0
    bytes_written: Counter[str] = field(default_factory=Counter)
    invocations: int = 0

    def reset(self) -> None:
        self.requests.clear()
        self.bytes_written.clear()
        self.sqs_chunks = self.wru = self.rru = self.invocations = 0

    def before(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        _event, service, operation = event_name.split(".")
        self.requests[f"{service}.{operation}"] += 1
        if service == "dynamodb" and operation == "PutItem":
            size = item_bytes(params["Item"])
            self.wru += math.ceil(size / 1024)
            self.bytes_written["dynamodb"] += size
        elif service == "s3" and operation == "PutObject":
            self.bytes_written["s3"] += len(params["Body"])
        elif service == "sqs" and operation in ("SendMessageBatch", "SendMessage"):
            entries = params.get("Entries") or [params]
            sent = sum(len(e["MessageBody"].encode()) for e in entries)
            self.bytes_written["sqs"] += sent
            self.sqs_chunks += max(1, math.ceil(sent / SQS_CHUNK))
        elif service == "sqs":
            self.sqs_chunks += 1

    def after(self, event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        _event, service, operation = event_name.split(".")
        if service != "dynamodb":
            return
        items = [parsed["Item"]] if "Item" in parsed else parsed.get("Items", [])
        if operation in ("GetItem", "Query"):
            read = sum(item_bytes(i) for i in items)
            self.rru += max(1, math.ceil(read / 4096))

    def install(self, client: Any) -> None:
        client.meta.events.register("provide-client-params", self._params)
        client.meta.events.register("after-call", self.after)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_id.hyphenize()
        self.before(f"before-call.{service}.{model.name}", params)


@dataclass
class Row:
    label: str
    at_step: int
    lambda_: float
    ddb_writes: float
    ddb_reads: float
    sqs: float
    s3_put: float
    s3_get: float
    wru: float
    rru: float
    sqs_chunks: float
    bytes_written: float
    ms: float

    @property
    def requests(self) -> float:
        return (
            self.lambda_ + self.ddb_writes + self.ddb_reads + self.sqs + self.s3_put + self.s3_get
        )

    @property
    def cost_per_million(self) -> float:
        per = (
            self.lambda_
            * (
                LAMBDA_PER_REQUEST
                + LAMBDA_MEMORY_GB * LAMBDA_ASSUMED_SECONDS * LAMBDA_PER_GB_SECOND
            )
            + self.wru * DDB_PER_WRU
            + self.rru * DDB_PER_RRU
            + self.sqs_chunks * SQS_FIFO_PER_REQUEST
            + self.s3_put * S3_PER_PUT
            + self.s3_get * S3_PER_GET
        )
        return per * 1e6


# ---------------------------------------------------------------- running


@contextmanager
def moto_world(graph: str = GRAPH_PATH) -> Iterator[Any]:
    """moto with the stack's resources, the worker's environment pointing at `graph`."""
    from moto import mock_aws

    from durable_graph.backends.aws import factory, lambda_worker
    from tests.aws.resources import clients, create_resources

    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            aws = clients()
            resources = create_resources(aws, graph=graph)
            os.environ.update(resources.env())
            lambda_worker.worker.cache_clear()
            factory.reset()
            yield aws, resources
    finally:
        lambda_worker.worker.cache_clear()
        factory.reset()
        os.environ.clear()
        os.environ.update(saved)


def measure(size: int, near: int, far: int, window: int, rewrite: bool = True) -> list[Row]:
    import logging

    from durable_graph.backends.aws import lambda_worker
    from durable_graph.backends.aws.local_poller import EventSourcePoller
    from functions.worker.handler import handler, logger

    logger.setLevel(logging.WARNING)  # the worker logs every commit at INFO
    logging.getLogger("durable_graph").setLevel(logging.WARNING)
    rows: list[Row] = []
    with moto_world() as (aws, resources):
        rt = lambda_worker.worker().rt
        meter = Meter()
        for client in (rt.clients.dynamodb, rt.clients.s3, rt.clients.sqs, rt.clients.sns):
            meter.install(client)
        meter.install(aws.sqs)  # the event source mapping's receives and deletes
        poller = EventSourcePoller(aws.sqs, resources.settings.queue_url, handler)
        start_values: dict[str, Any] = {"size": size, "stop_at": far + window + 1}
        if not rewrite:
            start_values.update(rewrite=False, blob=blob_for(size, 0))
        rt.graph.start(start_values, thread_id="loop")

        def run_to(step: int) -> None:
            while (rt.backend.checkpoints.head_checkpoint("loop") or _never()).step < step:
                assert poller.poll_once() == 1

        # powertools prints its metric lines on stdout: keep them out of the table
        with contextlib.redirect_stdout(io.StringIO()):
            for start in (near, far):
                run_to(start)
                meter.reset()
                times = []
                for _ in range(window):
                    began = time.perf_counter()
                    assert poller.poll_once() == 1
                    times.append((time.perf_counter() - began) * 1000)
                meter.invocations = window
                r = meter.requests
                rows.append(
                    Row(
                        label=_size_label(size) + ("" if rewrite else " n"),
                        at_step=start,
                        lambda_=meter.invocations / window,
                        ddb_writes=(r["dynamodb.PutItem"]) / window,
                        ddb_reads=(r["dynamodb.GetItem"] + r["dynamodb.Query"]) / window,
                        sqs=(
                            r["sqs.ReceiveMessage"]
                            + r["sqs.DeleteMessageBatch"]
                            + r["sqs.SendMessageBatch"]
                            + r["sqs.ChangeMessageVisibility"]
                        )
                        / window,
                        s3_put=r["s3.PutObject"] / window,
                        s3_get=r["s3.GetObject"] / window,
                        wru=meter.wru / window,
                        rru=meter.rru / window,
                        sqs_chunks=meter.sqs_chunks / window,
                        bytes_written=sum(meter.bytes_written.values()) / window,
                        ms=statistics.median(times),
                    )
                )
    return rows


def durable_functions_per_million(state_bytes: int, operations: int = 1) -> float:
    """List price of a million transitions (or threads of `operations` durable operations) on
    Lambda durable functions, each checkpointing `state_bytes`."""
    written_gb = state_bytes * operations * 1e6 / 1e9
    return (
        operations * DURABLE_FUNCTIONS_PER_OPERATION * 1e6
        + written_gb * DURABLE_FUNCTIONS_PER_GB_WRITTEN
    )


def _never() -> Any:
    raise RuntimeError("the thread vanished")


def _size_label(size: int) -> str:
    return f"{size // 1024} KB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--far-step", type=int, default=1000)
    parser.add_argument("--near-step", type=int, default=10)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--sizes", default="2048,51200,512000")
    args = parser.parse_args()
    rows: list[Row] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        rows.extend(measure(size, args.near_step, args.far_step, args.window))
    for size in [int(s) for s in args.sizes.split(",")]:  # the same state, a small change
        rows.extend(measure(size, args.near_step, args.far_step, args.window, rewrite=False))

    header = (
        f"{'state':>7} {'step':>5} | {'req/tr':>6} {'target':>6} | {'Lambda':>6} {'DDB W':>5} "
        f"{'DDB R':>5} {'SQS':>5} {'S3 PUT':>6} {'S3 GET':>6} | {'WRU':>5} {'RRU':>4} "
        f"{'bytes':>8} | {'$/M tr':>7} {'vs SFN':>6} | {'ms*':>5}"
    )
    print("AWS requests per transition (moto, real worker path, batch size 1)")
    print(header)
    print("-" * len(header))
    missed = []
    for row in rows:
        target = 5 if row.label.startswith("2 KB") or row.label.endswith(" n") else 7
        ok = row.requests <= target
        if not ok:
            missed.append(row)
        print(
            f"{row.label:>7} {row.at_step:>5} | {row.requests:>6.2f} {'<=' + str(target):>6} | "
            f"{row.lambda_:>6.2f} {row.ddb_writes:>5.2f} {row.ddb_reads:>5.2f} {row.sqs:>5.2f} "
            f"{row.s3_put:>6.2f} {row.s3_get:>6.2f} | {row.wru:>5.1f} {row.rru:>4.1f} "
            f"{row.bytes_written:>8.0f} | {row.cost_per_million:>7.2f} "
            f"{row.cost_per_million / 25:>5.0%} | {row.ms:>5.1f}" + ("" if ok else "   MISSED")
        )
    print(
        f"{'Step Functions Standard':>38}: $25.00 per million state transitions "
        "(the baseline; 'vs SFN' = our cost / theirs)"
    )
    for size in sorted({int(s) for s in args.sizes.split(",")}):
        durable = durable_functions_per_million(size)
        print(
            f"{'Lambda durable functions':>38}: ${durable:.2f} per million {_size_label(size)} "
            "steps (1 durable operation + data written; + Lambda's own requests and GB-s)"
        )
    print(
        "Cost: Lambda $0.20/M + 128 MB x 50 ms (assumed) x $0.0000166667/GB-s; DynamoDB "
        "$0.625/M WRU, $0.125/M RRU; SQS FIFO $0.50/M per 64 KB chunk; S3 PUT $5/M, GET $0.40/M."
    )
    print(
        "bytes = bytes sent per transition to DynamoDB items, S3 objects and SQS bodies. "
        "ms* = median handler time against in-process moto (not a Lambda duration)."
    )
    if missed:
        print("TARGET MISSED for: " + ", ".join(f"{r.label} at step {r.at_step}" for r in missed))
        return 1
    print("All targets met: <= 5 requests at 2 KB, <= 7 with payloads offloaded, at both steps.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
