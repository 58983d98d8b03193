"""The OpenAPI document: generated from the models and committed, valid, and true of the served
API — fuzzed from it with schemathesis against a real `durable-graph serve` (no 5xx; every
status, content type and body as documented)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NotSet

from durable_graph.api.openapi import PATH, render
from durable_graph.api.webhooks import sign
from tests.api.conftest import Served, serve, stop

schema = schemathesis.openapi.from_path(PATH)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_committed_document_is_the_generated_one() -> None:
    """Given the models and routes
    When the document is generated
    Then it equals the committed openapi.yaml (regenerate: python -m durable_graph.api.openapi)."""
    assert PATH.read_text(encoding="utf-8") == render()


def test_document_is_valid_openapi() -> None:
    """Given the committed document
    When openapi-spec-validator checks it
    Then it is valid OpenAPI 3.1, with every route of the API."""
    document, _ = read_from_filename(str(PATH))
    validate(document)
    assert set(document["paths"]) == {
        "/threads",
        "/threads/{thread_id}",
        "/threads/{thread_id}/history",
        "/threads/{thread_id}/steps/{step}",
        "/threads/{thread_id}/resume",
        "/threads/{thread_id}/verify",
        "/threads/{thread_id}/diff",
        "/threads/{thread_id}/export",
        "/threads/{thread_id}/fork",
        "/threads/{thread_id}/erase",
        "/approvals/{token}",
    }


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = serve(tmp_path_factory.mktemp("fuzz"))
    # One suspended thread with a known id, so generated reads sometimes hit something real.
    body = json.dumps({"thread_id": "fuzz", "input": {"user_prompt": "hi"}}).encode()
    headers = sign(running.secret, "msg_fuzz", int(time.time()), body)
    assert requests.post(f"{running.url}/threads", data=body, headers=headers, timeout=10).ok
    running.wait_for_status("fuzz", "suspended")
    yield running
    assert stop(running) == 0


def send(case: Any, served: Served) -> requests.Response:
    """Call the API as a client would: thread routes with the API key, and webhook bodies
    signed (else every generated start would stop at 401 and the body would go untested)."""
    if case.operation.label == "POST /threads" and not isinstance(case.body, NotSet):
        raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        if _is_utf8(raw):  # a webhook body is text; other bytes are sent unsigned below
            return served.post_signed(raw)
    response: requests.Response = case.call(
        base_url=served.url, headers={"x-api-key": served.api_key}, timeout=10
    )
    return response


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: Any, fuzzed: Served) -> None:
    """Given the served API and its document
    When schemathesis generates requests for every operation
    Then no answer is a 5xx, and every status, content type and body is documented."""
    response = send(case, fuzzed)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code < 500


def test_fuzzing_left_the_known_thread_intact(fuzzed: Served) -> None:
    """Given the fuzzing above (it may have resumed the known thread with generated values)
    When the thread's chain is checked with `durable-graph verify`
    Then every checkpoint still verifies."""
    import subprocess
    import sys

    from tests.api.conftest import REPO

    done = subprocess.run(
        [sys.executable, "-m", "durable_graph", "verify", "fuzz", "--json"],
        cwd=REPO,
        env={
            "DURABLE_GRAPH_HOME": str(fuzzed.home),
            "PYTHONPATH": f"{REPO / 'shared'}:{REPO}",  # this checkout, not what is installed
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert Path(fuzzed.home / "state.db").exists()
