"""Every Lambda handler runs with the file system read-only outside /tmp, as on Lambda.

On Lambda the working directory is `/var/task` (the function code) and only `/tmp` is writable.
A handler that writes anywhere else (the seed example once wrote its email under
`./.durable-graph/outbox`) fails there with `[Errno 30] Read-only file system`, which tests
running in a writable checkout cannot see. Here `tests/aws/readonly_handlers.py` runs the worker,
api, s3_trigger (start), dlq and sweeper handlers in a child process inside a private mount
namespace (`unshare -m`) where `/` and the checkout are remounted read-only and only the rest of
`/tmp` stays writable; its working directory is `functions/`, like `/var/task`. AWS is a moto
server in this process's namespace. Where mount namespaces are not available to a non-root
user, the child instead runs in a copy of `functions/` made read-only with chmod (which binds
only non-root users).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from durable_graph.api.keys import new_webhook_secret
from durable_graph.backends.aws import names
from tests.api.test_handler import STAGE_URL
from tests.aws.conftest import ROOT
from tests.aws.resources import REGION, clients, create_resources, session

pytestmark = pytest.mark.slow

# `/` read-only, `/tmp` its own (writable) mount, in a namespace no other process sees; then the
# checkout (the parent of the working directory, `functions/`) read-only too, wherever it is: a
# fresh clone under /tmp would otherwise stay writable.
READ_ONLY_ROOT = (
    "mount --make-rprivate / && mount --bind /tmp /tmp && mount -o remount,bind,ro / && "
    'repo="$(dirname "$PWD")" && mount --bind "$repo" "$repo" && '
    'mount -o remount,bind,ro "$repo"'
)


def mount_namespace() -> list[str] | None:
    """The command prefix that runs a process with `/` read-only, or None if not permitted."""
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-m", "sh", "-c", f'{READ_ONLY_ROOT} && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def read_only_copy(tmp_path: Path) -> Path:
    """`functions/` copied and made read-only (effective for non-root users only)."""
    task = tmp_path / "task"
    shutil.copytree(ROOT / "functions", task, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [task, *(p for p in task.rglob("*") if p.is_dir())]:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    return task


def test_every_handler_runs_with_the_task_root_read_only(endpoint: str, tmp_path: Path) -> None:
    """Given the seed graph deployed on a moto server and a child process whose file system is
    read-only outside /tmp, when the child drives the seed exercise through the api and worker
    handlers, hands an upload to the start handler, settles a dead letter and sweeps, then
    every handler answered, the email went out through SES once, and the working directory
    refused writes."""
    prefix = mount_namespace()
    if prefix is None and os.geteuid() == 0:
        pytest.skip("root without mount namespaces: neither read-only method applies here")
    cwd = ROOT / "functions" if prefix is not None else read_only_copy(tmp_path)

    aws = clients(endpoint)
    resources = create_resources(aws, graph="examples.email_approval:graph")
    sm = session().client("secretsmanager", endpoint_url=endpoint)
    signing = sm.create_secret(Name="approval-key", SecretString=secrets.token_urlsafe(48))
    webhook_secret = new_webhook_secret()
    webhook = sm.create_secret(Name="webhook-secret", SecretString=webhook_secret)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABLE_GRAPH_", "AWS_"))}
    env.update(
        {
            **resources.env(),
            names.ENV_SIGNING_KEY_PARAM: signing["ARN"],
            names.ENV_WEBHOOK_SECRET_PARAM: webhook["ARN"],
            names.ENV_PUBLIC_BASE_URL: STAGE_URL,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "DurableGraphTests",
            "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}",
            "DG_TEST_WEBHOOK_SECRET": webhook_secret,
            "DG_TEST_NOTIFICATIONS_URL": resources.notifications_url,
            "DG_TEST_UPLOADS_BUCKET": resources.uploads_bucket,
        }
    )
    command = [*(prefix or []), sys.executable, "-m", "tests.aws.readonly_handlers"]
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )

    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cwd_read_only"] is True, report
    assert (report["api_start"], report["api_page"], report["api_approve"]) == (201, 200, 200)
    assert report["thread"] == {"status": "completed", "outcome": "sent"}
    assert report["ses_sent"] == 1
    [(kind, error)] = report["s3_trigger"]  # read and hashed the upload, then refused it:
    assert kind == "rejected" and "'upload' is not a field of EmailState" in error
    assert report["dlq"] == {"records": 1, "failed": 0}
    assert "resent" in report["sweeper"]
    assert "Read-only file system" not in done.stderr
