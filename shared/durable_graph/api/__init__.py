"""The HTTP API (threads, time travel, resume, approval links) as one powertools resolver.

Example, on the embedded store (what `durable-graph serve` does)::

    from durable_graph.api import build_resolver, local_api
    api = local_api(home, backend, public_url="http://127.0.0.1:8080",
                    graphs=("examples.email_approval:graph",))
    resolver = build_resolver(api)
    result = resolver.resolve(api_gateway_proxy_event, lambda_context)
"""

from durable_graph.api.app import build_resolver
from durable_graph.api.approval_policy import ApprovalPolicy
from durable_graph.api.approvals import Approvals
from durable_graph.api.auth import ApiKeyAuth, IamAuth
from durable_graph.api.config import MAX_BODY_BYTES, Api, ApiConfig
from durable_graph.api.identity import Authenticator, Identity, caller, identify
from durable_graph.api.keys import (
    KeyProvider,
    LocalKeyFile,
    SecretsManagerKeys,
    SecretsManagerSecrets,
    SecretSource,
    SsmParameterKeys,
)
from durable_graph.api.local import local_api

__all__ = [
    "MAX_BODY_BYTES",
    "Api",
    "ApiConfig",
    "ApiKeyAuth",
    "ApprovalPolicy",
    "Approvals",
    "Authenticator",
    "IamAuth",
    "Identity",
    "KeyProvider",
    "LocalKeyFile",
    "SecretSource",
    "SecretsManagerKeys",
    "SecretsManagerSecrets",
    "SsmParameterKeys",
    "build_resolver",
    "caller",
    "identify",
    "local_api",
]
