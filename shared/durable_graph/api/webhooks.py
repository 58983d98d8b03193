"""Standard Webhooks verification for `POST /threads`, done on the raw body before parsing.

Signature: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`
(space-separated list; any one may match), computed with the `standardwebhooks` package so the
scheme is the maintained one. The timestamp must be within ±5 minutes of *our* clock (a `Clock`,
so tests can pin time), which bounds how long a captured request can be replayed; inside that
window the webhook id makes a replay a no-op (see `service.Threads.start`).

The secret is Standard Webhooks' `whsec_<base64 of 24-64 random bytes>` (`keys.new_webhook_secret`
and the stack create it so). A stored secret in any other form is a configuration error, not a
bad request: `check_secret` names the problem (without the secret), the API's cold start checks
it (`api.aws.aws_resolver`), and a request that meets one anyway is answered 503, never 500.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from durable_graph.api.errors import ServiceMisconfigured, Unauthorized
from durable_graph.api.keys import SecretSource
from durable_graph.clock import Clock

TOLERANCE_SECONDS = 5 * 60
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # the range the Standard Webhooks specification recommends


def check_secret(secret: str) -> str:
    """Return `secret` if it is `whsec_<base64>` of 24-64 bytes; else `ServiceMisconfigured`
    saying what is wrong with it (never the secret itself)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    problem = None
    if not secret.startswith(SECRET_PREFIX):
        problem = f"it does not start with {SECRET_PREFIX!r}"
    else:
        try:
            size = len(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            problem = f"what follows {SECRET_PREFIX!r} is not base64"
        else:
            if not SECRET_BYTES[0] <= size <= SECRET_BYTES[1]:
                problem = f"it decodes to {size} bytes, not {SECRET_BYTES[0]}-{SECRET_BYTES[1]}"
    if problem is not None:
        raise ServiceMisconfigured(
            f"the webhook secret is not a Standard Webhooks secret ({problem}); store one made "
            f"by `durable_graph.api.keys.new_webhook_secret()`: {SECRET_PREFIX}<base64>",
            field="webhook_secret",
        )
    return secret


class WebhookVerifier:
    def __init__(self, source: SecretSource, clock: Clock) -> None:
        self.source = source
        self.clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the webhook id if the request is authentic and fresh; else `Unauthorized`."""
        lower = {k.lower(): v for k, v in headers.items()}
        msg_id = lower.get("webhook-id", "")
        timestamp = lower.get("webhook-timestamp", "")
        signatures = lower.get("webhook-signature", "")
        if not (msg_id and timestamp and signatures):
            raise Unauthorized(
                "missing webhook-id, webhook-timestamp or webhook-signature header",
                field="webhook-signature",
            )
        if not _ID.match(msg_id):
            raise Unauthorized("webhook-id is not a valid id", field="webhook-id")
        if not _TIMESTAMP.match(timestamp):
            raise Unauthorized("webhook-timestamp is not a Unix time", field="webhook-timestamp")
        sent = int(timestamp)
        if abs(self.clock.now().timestamp() - sent) > TOLERANCE_SECONDS:
            raise Unauthorized(
                "webhook-timestamp is more than 5 minutes from the server's clock",
                field="webhook-timestamp",
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Unauthorized("the body is not UTF-8 text", field="body") from None
        offered = [
            value
            for version, _, value in (s.partition(",") for s in signatures.split())
            if version == "v1"
        ]
        when = datetime.fromtimestamp(sent, UTC)
        for secret in self.secrets():
            expected = Webhook(secret).sign(msg_id, when, text).partition(",")[2]
            # Check every offered signature with a constant-time comparison.
            if any(
                hmac.compare_digest(expected.encode(), o.encode("utf-8", "replace"))
                for o in offered
            ):
                return msg_id
        raise Unauthorized("webhook signature does not match", field="webhook-signature")

    def secrets(self) -> list[str]:
        """The secrets to verify with, fetched if not cached: the current one (first) must pass
        `check_secret`; a previous one that does not (e.g. the 64-character secret of a stack
        from before `whsec_` secrets) is dropped rather than failing every request."""
        found = list(self.source.secrets())
        if not found:
            raise ServiceMisconfigured("no webhook secret is stored", field="webhook_secret")
        previous = []
        for secret in found[1:]:
            with contextlib.suppress(ServiceMisconfigured):
                previous.append(check_secret(secret))
        return [check_secret(found[0]), *previous]


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers a sender attaches (used by tests and by `durable-graph` clients)."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode("utf-8")),
    }
