"""Running the CLI and the stack's Lambda functions on moto as a reader would, keeping what
they printed, for `compliance_on_aws.py` to write into the page."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

from durable_graph.api.keys import new_webhook_secret
from durable_graph.backends.aws import names
from durable_graph.backends.aws.local_poller import EventSourcePoller, LocalLambdaContext
from durable_graph.cli import common, main
from tests.aws.resources import Resources, clients, session

API_EVENT = Path(__file__).resolve().parents[1] / "tests/api/events/api_gateway_rest.json"


class Walkthrough:
    """Runs commands as a reader would type them and keeps what they printed."""

    def __init__(self, stack: str, resources: Resources, workdir: Path) -> None:
        self.stack = stack
        self.resources = resources
        self.workdir = workdir
        self.parts: list[str] = []

    def say(self, text: str) -> None:
        self.parts.append(text.strip("\n") + "\n")

    def cli(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
        """`durable-graph ARGS` with `DURABLE_GRAPH_STORE=aws://STACK` (or `env`)."""
        common.backend.cache_clear()
        common.graph.cache_clear()
        out = io.StringIO()
        with (
            _environment(env or {}),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            code = main(list(args))
        assert code == expect, (args, code, out.getvalue())
        shown = " ".join(shlex.quote(a) for a in args).replace(str(self.workdir) + "/", "")
        prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        text = out.getvalue().replace(str(self.workdir) + "/", "")
        self.parts.append(
            f"```console\n$ {prefix + ' ' if prefix else ''}durable-graph {shown}\n{text}```\n"
        )
        return text

    def lambda_workers(self) -> None:
        """What the deployed `worker` function does: take the transitions off SQS, run them."""
        from functions.worker.handler import handler, logger

        logger.setLevel(logging.WARNING)
        poller = EventSourcePoller(
            clients().sqs, self.resources.settings.queue_url, handler, batch_size=10
        )
        poller.drain()

    def sweeper(self, job: str = "retention") -> dict[str, object]:
        """Invoke the deployed `sweeper` function's `job`, as its schedule does."""
        from functions.sweeper.handler import handler

        done: dict[str, object] = handler({"job": job}, LocalLambdaContext())
        payload = f"'{json.dumps({'job': job})}'"
        self.shell(
            "aws lambda invoke --function-name $SWEEPER_FUNCTION --cli-binary-format "
            f"raw-in-base64-out --payload {payload} /dev/stdout",
            json.dumps(done, indent=2),
        )
        return done

    def shell(self, command: str, output: str) -> None:
        """A command whose output was computed here (an AWS CLI call, a grep), shown as typed."""
        self.parts.append(f"```console\n$ {command}\n{output.rstrip()}\n```\n")

    def api(self, method: str, path: str, body: Mapping[str, object], caller: str) -> str:
        """Call the deployed `api` function as API Gateway does for a SigV4-signed request
        (IAM authorisation puts the caller's ARN in the request context); show it as awscurl."""
        from functions.api import handler as api_handler

        event = json.loads(API_EVENT.read_text())
        raw = json.dumps(body)
        event.update(httpMethod=method, path=path, resource=path, body=raw)
        event["headers"]["Content-Type"] = "application/json"
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}", resourcePath=path)
        event["requestContext"]["identity"]["userArn"] = caller
        api_handler.resolver.cache_clear()
        result = api_handler.handler(event, LocalLambdaContext(function_name="durable-graph-api"))
        shown = json.dumps(json.loads(result["body"]), indent=2)
        self.shell(
            f'awscurl --service execute-api -X {method} "${{API_URL}}{path.lstrip("/")}" \\\n'
            f"    -d {shlex.quote(raw)}",
            f"HTTP {result['statusCode']}\n{shown}",
        )
        assert result["statusCode"] == 200, result
        return str(result["body"])

    def page(self) -> str:
        return "\n".join(self.parts)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def payload_versions(resources: Resources) -> list[str]:
    """`aws s3api list-object-versions` of the payload bucket, one line per version."""
    s3, bucket = clients().s3, resources.settings.bucket
    listing = s3.list_object_versions(Bucket=bucket, Prefix=names.PAYLOAD_PREFIX)
    return [f"{v['Key']}\t{v['VersionId']}" for v in listing.get("Versions", [])]


def api_environment(resources: Resources) -> None:
    """The `api` function's secrets and settings, as the stack gives them."""
    sm = session().client("secretsmanager")
    signing = sm.create_secret(Name="approval-key", SecretString="k" * 48)["ARN"]
    webhook = sm.create_secret(Name="webhook", SecretString=new_webhook_secret())["ARN"]
    os.environ[names.ENV_SIGNING_KEY_PARAM] = signing
    os.environ[names.ENV_WEBHOOK_SECRET_PARAM] = webhook
    os.environ[names.ENV_PUBLIC_BASE_URL] = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
