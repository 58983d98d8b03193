"""The API on the embedded store: secrets in `$DURABLE_GRAPH_HOME/keys/` (created on first use,
files 0600), an API key instead of IAM."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from durable_graph.api.approval_policy import ApprovalPolicy
from durable_graph.api.auth import ApiKeyAuth
from durable_graph.api.config import MAX_BODY_BYTES, Api, ApiConfig
from durable_graph.api.explorer_auth import SessionAuth
from durable_graph.api.keys import (
    LocalKeyFile,
    LocalSecret,
    local_secret,
    new_api_key,
    new_webhook_secret,
)
from durable_graph.backend import Backend
from durable_graph.clock import Clock, SystemClock


def key_paths(home: Path) -> dict[str, Path]:
    folder = home / "keys"
    return {
        "signing": folder / "approval-signing.json",
        "webhook": folder / "webhook-secret",
        "api_key": folder / "api-key",
    }


def local_api(
    home: Path,
    backend: Backend,
    *,
    public_url: str,
    graphs: tuple[str, ...],
    clock: Clock | None = None,
    policies: Mapping[str, ApprovalPolicy] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    explorer_token: str | None = None,
) -> Api:
    """An `Api` over `backend` whose suspensions carry approval links; with `explorer_token`,
    the ledger explorer too (that token as a session cookie, or the API key)."""
    paths = key_paths(home)
    api_key = ApiKeyAuth(local_secret(paths["api_key"], new_api_key))
    config = ApiConfig(
        backend=backend,
        keys=LocalKeyFile(paths["signing"]),
        webhook_secrets=LocalSecret(paths["webhook"], new_webhook_secret),
        auth=api_key,
        public_base_url=public_url,
        graphs=graphs,
        clock=clock or SystemClock(),
        policies=dict(policies or {}),
        max_body_bytes=max_body_bytes,
        explorer_auth=SessionAuth(explorer_token, api_key) if explorer_token else None,
    )
    api = Api(config)
    api.install_links()
    return api
