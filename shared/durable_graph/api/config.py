"""Everything the API needs, assembled once per process (Lambda cold start, or `serve`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable_graph.api.approval_policy import ApprovalPolicy
from durable_graph.api.approvals import Approvals
from durable_graph.api.identity import Authenticator
from durable_graph.api.keys import KeyProvider, SecretSource
from durable_graph.api.service import Threads
from durable_graph.api.webhooks import WebhookVerifier
from durable_graph.backend import Backend
from durable_graph.clock import Clock, SystemClock
from durable_graph.drawing import publish_shape, shape_of
from durable_graph.engine import Engine
from durable_graph.errors import InvalidInput
from durable_graph.loader import load_graph
from durable_graph.runtime import CompiledGraph

MAX_BODY_BYTES = 256 * 1024
log = logging.getLogger("durable_graph.api")


@dataclass(frozen=True)
class ApiConfig:
    """How one API instance is wired.

    Attributes:
        graphs: import paths `POST /threads` may start; the first is the default.
        public_base_url: what approval links start with (never taken from a request's Host).
        policies: approval policy per graph name; graphs not listed use `default_policy`.
        explorer_auth: who may open the ledger explorer's pages; None serves no explorer.
        approver_auth: who is signed in when an approval link decides (the decision is then
            recorded as that person, and approval rules can tell people apart); default: the
            explorer's sign-in. None: link decisions are known only by the link's subject.
    """

    backend: Backend
    keys: KeyProvider
    webhook_secrets: SecretSource
    auth: Authenticator
    public_base_url: str
    graphs: tuple[str, ...]
    clock: Clock = field(default_factory=SystemClock)
    max_body_bytes: int = MAX_BODY_BYTES
    policies: Mapping[str, ApprovalPolicy] = field(default_factory=dict)
    default_policy: ApprovalPolicy | None = field(default_factory=ApprovalPolicy)
    explorer_auth: Authenticator | None = None
    approver_auth: Authenticator | None = None

    def __post_init__(self) -> None:
        if self.approver_auth is None and self.explorer_auth is not None:
            object.__setattr__(self, "approver_auth", self.explorer_auth)
        if not self.graphs:
            raise ValueError("at least one graph must be allowed")
        if not self.public_base_url.startswith(("http://", "https://")):
            raise ValueError(f"public base URL {self.public_base_url!r} must be http(s)")


class Api:
    """The API's services over one backend; `build_resolver(api)` puts HTTP in front."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self._graphs: dict[str, CompiledGraph] = {}
        self._shapes: dict[tuple[str, str], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self.threads = Threads(
            config.backend,
            clock=config.clock,
            allowed_graphs=config.graphs,
            graph_for=self.graph,
        )
        self.approvals = Approvals(
            config.backend,
            config.keys,
            base_url=config.public_base_url,
            clock=config.clock,
            policy_for=self.policy,
            engine_for=self.engine,
        )
        self.webhooks = WebhookVerifier(config.webhook_secrets, config.clock)

    def graph(self, name: str) -> CompiledGraph:
        """The named graph bound to this backend and clock (imported once)."""
        with self._lock:
            if name not in self._graphs:
                self._graphs[name] = load_graph(name).with_backend(
                    self.config.backend, clock=self.config.clock
                )
            return self._graphs[name]

    def shapes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The drawable shape of every graph served here, by (name, version): what the
        explorer draws a thread of such a graph from, with no store read (on AWS the api
        function serves its deployment's graph, so its threads are drawn whole there).

        A graph that does not import here (an auditor's machine without the application) is
        left out with a warning: serving the ledger does not need it."""
        with self._lock:
            if self._shapes is not None:
                return self._shapes
        shapes: dict[tuple[str, str], dict[str, Any]] = {}
        for name in self.config.graphs:
            try:
                shape = shape_of(self.graph(name).spec, name)
            except InvalidInput as exc:
                log.warning("graph %s not drawn from its shape: %s", name, exc)
                continue
            shapes[(name, shape["version"])] = shape
        with self._lock:
            self._shapes = shapes
        return shapes

    def publish_shapes(self) -> None:
        """Store the shape of every graph served here (once per graph version), so the
        explorer draws a thread's graph from the store without importing it, wherever it is
        served from (`serve --store` on an auditor's machine). Called by `serve` when it
        starts, never by a route (a refused request changes nothing stored)."""
        for shape in self.shapes().values():
            publish_shape(self.config.backend.checkpoints, shape)

    def engine(self, name: str) -> Engine:
        return self.graph(name).engine()

    def policy(self, graph: str) -> ApprovalPolicy | None:
        return self.config.policies.get(graph, self.config.default_policy)

    def install_links(self) -> None:
        """Make suspensions committed through this backend carry approval links."""
        self.config.backend.approval_links = self.approvals.grant
