"""Billable AWS requests of one whole seed approval thread on the serverless runtime (moto).

The thread runs as it runs on AWS: a signed webhook `POST /threads` through the `api` Lambda
handler (start), the worker Lambda draining the queue through the event source mapping's
emulation (draft + suspend, with the SNS notification), `GET` of the approval link (the page),
`POST` of the approval, and the worker again (send + complete). Every AWS request of every
client is counted (botocore's `before-call` hook on each client, and the clients the API builds
for its secrets), after a first thread has warmed every container (cold start excluded, as on
a warm Lambda). Lambda invocations are counted per handler call.

Prints the requests per phase and in all, the write units, and the list price per thread
(prices in `aws_requests.py`), for a 2 KB and a 50 KB prompt.

    PYTHONPATH=. .venv/bin/python bench/aws_approval.py [--sizes 2048,51200] [--detail]
        [--previous DIR]

`--previous DIR` measures another checkout's durable-graph (e.g. the previous release) in a
child process and prints its per-phase counts beside these.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from bench.aws_requests import (
    DDB_PER_RRU,
    DDB_PER_WRU,
    LAMBDA_ASSUMED_SECONDS,
    LAMBDA_MEMORY_GB,
    LAMBDA_PER_GB_SECOND,
    LAMBDA_PER_REQUEST,
    S3_PER_GET,
    S3_PER_PUT,
    SQS_FIFO_PER_REQUEST,
    STEP_FUNCTIONS_PER_TRANSITION,
    durable_functions_per_million,
    item_bytes,
    moto_world,
    words,
)

EMAIL = "examples.email_approval:graph"
EVENT = Path(__file__).resolve().parents[1] / "tests" / "api" / "events" / "api_gateway_rest.json"
STAGE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
KMS_PER_REQUEST = 3e-6  # $0.03 per 10,000 asymmetric Sign requests
SNS_PER_REQUEST = 0.50e-6
SECRETS_PER_REQUEST = 0.05 / 10_000
# The same flow elsewhere: Step Functions Standard with a .waitForTaskToken review state enters
# 4 states (draft, review, send, succeed) and invokes 2 Lambda tasks; Lambda durable functions
# run 3 durable operations (draft step, wait for the callback, send step) over 2 invocations.
SFN_TRANSITIONS_PER_THREAD = 4
DURABLE_OPERATIONS_PER_THREAD = 3
LAMBDA_INVOCATIONS_ELSEWHERE = 2
TRACE = "--trace" in sys.argv


class Counting:
    """Every AWS request made by any client, by `service.Operation`, with DynamoDB units."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.wru = 0
        self.rru = 0
        self.invocations = 0
        self.paused = False

    def reset(self) -> None:
        self.requests.clear()
        self.wru = self.rru = self.invocations = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[Counting]:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        meter = self

        def counted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if meter.paused:  # the harness reading what a subscriber would get
                return original(client, operation, params)
            service = client.meta.service_model.service_id.hyphenize()
            meter.requests[f"{service}.{operation}"] += 1
            if TRACE:
                print(f"  {service}.{operation} {key_of(params)}  <- {caller()}", file=sys.stderr)
            if service == "dynamodb":
                meter.wru += write_units(operation, params)
            answer = original(client, operation, params)
            if service == "dynamodb" and operation in ("GetItem", "Query", "BatchGetItem"):
                items = [answer["Item"]] if "Item" in answer else answer.get("Items", [])
                meter.rru += max(1, math.ceil(sum(item_bytes(i) for i in items) / 4096))
            return answer

        BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]

    @property
    def total(self) -> int:
        return self.invocations + sum(self.requests.values())

    def price(self) -> float:
        r = self.requests
        sqs = sum(n for k, n in r.items() if k.startswith("sqs."))
        return (
            self.invocations
            * (
                LAMBDA_PER_REQUEST
                + LAMBDA_MEMORY_GB * LAMBDA_ASSUMED_SECONDS * LAMBDA_PER_GB_SECOND
            )
            + self.wru * DDB_PER_WRU
            + self.rru * DDB_PER_RRU
            + sqs * SQS_FIFO_PER_REQUEST
            + r["s3.PutObject"] * S3_PER_PUT
            + r["s3.GetObject"] * S3_PER_GET
            + r["kms.Sign"] * KMS_PER_REQUEST
            + r["sns.Publish"] * SNS_PER_REQUEST
            + r["secrets-manager.GetSecretValue"] * SECRETS_PER_REQUEST
        )


def key_of(params: dict[str, Any]) -> str:
    """The sort key (or key condition) a DynamoDB request names, for --trace."""
    item = params.get("Key") or params.get("Item") or {}
    sort = item.get("sk", {}).get("S") if isinstance(item, dict) else None
    return str(sort or params.get("KeyConditionExpression") or "")[:40]


def caller() -> str:
    """The innermost frames of our code that made the request, for --trace."""
    frames = [
        f"{Path(f.filename).stem}:{f.lineno}:{f.name}"
        for f in traceback.extract_stack()
        if "durable_graph" in f.filename or "functions" in f.filename
    ]
    return " < ".join(reversed(frames[-4:]))


def write_units(operation: str, params: dict[str, Any]) -> int:
    """Write request units: 1 per started KB of each item; twice that inside a transaction."""
    if operation == "PutItem":
        return math.ceil(item_bytes(params["Item"]) / 1024)
    if operation == "UpdateItem":
        values = params.get("ExpressionAttributeValues", {})
        return max(1, math.ceil(item_bytes(values) / 1024))
    if operation == "TransactWriteItems":
        units = 0
        for action in params["TransactItems"]:
            body = action.get("Put", {}).get("Item") or action.get("Update", {}).get(
                "ExpressionAttributeValues", {}
            )
            units += 2 * max(1, math.ceil(item_bytes(body) / 1024))
        return units
    return 0


class Thread:
    """One approval thread driven through the two Lambda handlers."""

    def __init__(self, world: Any, webhook_secret: str) -> None:
        self.world = world
        self.webhook_secret = webhook_secret
        self.poller: Any = None

    def api(self, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
        from durable_graph.backends.aws.local_poller import LocalLambdaContext
        from functions.api import handler as api_handler

        event: dict[str, Any] = copy.deepcopy(json.loads(EVENT.read_text()))
        event.update(httpMethod=method, path=path, resource=path, body=body.decode() or None)
        event["headers"].update(headers)
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}", resourcePath=path)
        event["requestContext"]["identity"]["userArn"] = None
        result = api_handler.handler(event, LocalLambdaContext(function_name="durable-graph-api"))
        return int(result["statusCode"]), str(result["body"])

    def start(self, prompt: str, webhook_id: str) -> str:
        from durable_graph.api.webhooks import sign

        raw = json.dumps({"input": {"user_prompt": prompt}}).encode()
        status, body = self.api(
            "POST", "/threads", raw, **sign(self.webhook_secret, webhook_id, int(time.time()), raw)
        )
        assert status == 201, body
        thread_id: str = json.loads(body)["thread"]["thread_id"]
        return thread_id

    def drain(self) -> int:
        from durable_graph.backends.aws.local_poller import EventSourcePoller
        from functions.worker.handler import handler

        if self.poller is None:  # one mapping, as on AWS (it looks its queue's ARN up once)
            aws, resources = self.world
            self.poller = EventSourcePoller(aws.sqs, resources.settings.queue_url, handler)
        poller = self.poller
        invoked = 0
        while poller.poll_once():
            invoked += 1
        return invoked

    def drained(self, meter: Counting) -> None:
        """Drain, counting each invocation; the last, empty receive is the mapping's idle
        polling (not billed per transition, as in aws_requests.py), so it is not counted."""
        meter.invocations += self.drain()
        meter.requests["sqs.ReceiveMessage"] -= 1

    def link(self, thread_id: str, meter: Counting) -> str:
        from tests.aws.resources import published

        aws, resources = self.world
        meter.paused = True
        try:
            notes = [n for n in published(aws, resources) if n["thread_id"] == thread_id]
        finally:
            meter.paused = False
        return str(notes[-1]["links"]["approval"]).removeprefix(STAGE_URL)


def measure(size: int) -> tuple[dict[str, Counting], Counting]:
    from durable_graph.api.keys import new_webhook_secret
    from durable_graph.backends.aws import names
    from functions.api import handler as api_handler
    from tests.aws.conftest import reset_runtime
    from tests.aws.resources import session

    phases: dict[str, Counting] = {}
    with moto_world(EMAIL) as world, contextlib.redirect_stdout(io.StringIO()):
        sm = session().client("secretsmanager")
        signing = sm.create_secret(Name="approval-key", SecretString=secrets.token_urlsafe(48))
        webhook = new_webhook_secret()
        webhook_arn = sm.create_secret(Name="webhook-secret", SecretString=webhook)["ARN"]
        os.environ.update(
            {
                names.ENV_SIGNING_KEY_PARAM: signing["ARN"],
                names.ENV_WEBHOOK_SECRET_PARAM: webhook_arn,
                names.ENV_PUBLIC_BASE_URL: STAGE_URL,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        reset_runtime()
        api_handler.resolver.cache_clear()  # its secrets are this world's
        thread = Thread(world, webhook)
        prompt = prompt_of(size)
        total = Counting()
        for round_ in range(2):  # the first thread warms every container: not counted
            meter = Counting()
            with meter.installed():
                tid = thread.start(prompt, f"msg-{round_}")
                meter.invocations += 1
                phases_now = {"start (webhook)": snapshot(meter)}
                thread.drained(meter)
                phases_now["draft + suspend"] = snapshot(meter)
                path = thread.link(tid, meter)
                status, page = thread.api("GET", path, Accept="text/html")
                assert status == 200, page
                meter.invocations += 1
                phases_now["approval page"] = snapshot(meter)
                decision = json.dumps({"decision": "approve"}).encode()
                status, body = thread.api(
                    "POST", path, decision, **{"Content-Type": "application/json"}
                )
                assert status == 200, body
                meter.invocations += 1
                phases_now["approve"] = snapshot(meter)
                thread.drained(meter)
                phases_now["send + complete"] = snapshot(meter)
            if round_ == 1:
                phases = difference(phases_now)
                total = meter
    return phases, total


def prompt_of(size: int) -> str:
    """`size` bytes of prompt: "pay the supplier" and pseudo-random words (`words`: compressed
    rows are not flattered by a prompt of one repeated letter)."""
    return ("pay the supplier " + words(size))[:size]


def snapshot(meter: Counting) -> Counting:
    copy_ = Counting()
    copy_.requests = Counter(meter.requests)
    copy_.wru, copy_.rru, copy_.invocations = meter.wru, meter.rru, meter.invocations
    return copy_


def difference(cumulative: dict[str, Counting]) -> dict[str, Counting]:
    out: dict[str, Counting] = {}
    previous = Counting()
    for name, now in cumulative.items():
        phase = Counting()
        phase.requests = now.requests - previous.requests
        phase.wru = now.wru - previous.wru
        phase.rru = now.rru - previous.rru
        phase.invocations = now.invocations - previous.invocations
        out[name] = phase
        previous = now
    return out


def summary(phases: dict[str, Counting], total: Counting) -> dict[str, Any]:
    """One size's numbers as JSON (what `--json` prints and `--previous` reads)."""
    return {
        "phases": {
            name: {
                "requests": phase.total,
                "wru": phase.wru,
                "rru": phase.rru,
                "ops": {
                    "Lambda": phase.invocations,
                    **{k: n for k, n in phase.requests.items() if n},
                },
            }
            for name, phase in phases.items()
        },
        "requests": total.total,
        "wru": total.wru,
        "rru": total.rru,
        "price": total.price() * 1e6,
    }


def previous_run(source: Path, sizes: str) -> dict[str, Any]:
    """The same measurement with another checkout's durable-graph (`--previous`), in a child
    process importing it (this script and this checkout's `bench` package, so both runs meter
    and prompt alike; that library, its functions and test resources)."""
    with tempfile.TemporaryDirectory() as ours:
        (Path(ours) / "bench").symlink_to(Path(__file__).resolve().parent)
        path = [ours, str(source / "shared"), str(source)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        command = [sys.executable, __file__, "--json", "--sizes", sizes]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2048,51200")
    parser.add_argument("--detail", action="store_true", help="print every operation per phase")
    parser.add_argument("--trace", action="store_true", help="print each request and its caller")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON line")
    parser.add_argument(
        "--previous",
        type=Path,
        help="another checkout (e.g. the previous release): its numbers beside these",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {str(size): summary(*measure(size)) for size in sizes}
    if args.json:
        print(json.dumps(results))
        return 0
    before = previous_run(args.previous.resolve(), args.sizes) if args.previous else None
    targets = {2048: 28, 51200: 34}
    for size in sizes:
        now = results[str(size)]
        old = before[str(size)] if before is not None else None
        print(f"\nSeed approval thread, {size // 1024} KB prompt, warm containers")
        if old is not None:
            print(f"{'phase':<18}{'before':>8}{'after':>7}{'WRU before':>12}{'after':>7}")
            for name, phase in now["phases"].items():
                was = old["phases"].get(name, {})
                print(
                    f"{name:<18}{was.get('requests', '-'):>8}{phase['requests']:>7}"
                    f"{was.get('wru', '-'):>12}{phase['wru']:>7}"
                )
            print(
                f"{'whole thread':<18}{old['requests']:>8}{now['requests']:>7}{old['wru']:>12}"
                f"{now['wru']:>7}  ${old['price']:,.0f} -> ${now['price']:,.0f} per million"
            )
            if not args.detail:
                continue
        print(f"{'phase':<18}{'requests':>9}{'WRU':>6}{'RRU':>6}  operations")
        for name, phase in now["phases"].items():
            ops = ", ".join(f"{k} {n}" for k, n in sorted(phase["ops"].items()) if k != "Lambda")
            ops = f"Lambda {phase['ops']['Lambda']}, {ops}" if args.detail else ""
            print(f"{name:<18}{phase['requests']:>9}{phase['wru']:>6}{phase['rru']:>6}  {ops}")
        target = targets.get(size)
        print(
            f"{'whole thread':<18}{now['requests']:>9}{now['wru']:>6}{now['rru']:>6}  "
            f"target <= {target if target else '-'}; ${now['price']:,.0f} per million threads"
        )
        lambdas = (
            LAMBDA_INVOCATIONS_ELSEWHERE
            * 1e6
            * (
                LAMBDA_PER_REQUEST
                + LAMBDA_MEMORY_GB * LAMBDA_ASSUMED_SECONDS * LAMBDA_PER_GB_SECOND
            )
        )
        sfn = SFN_TRANSITIONS_PER_THREAD * STEP_FUNCTIONS_PER_TRANSITION * 1e6 + lambdas
        durable = durable_functions_per_million(size, DURABLE_OPERATIONS_PER_THREAD) + lambdas
        print(
            f"{'':<18}Step Functions Standard ${sfn:,.0f}, Lambda durable functions "
            f"${durable:,.0f} per million threads (list prices; their Lambda tasks included)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
