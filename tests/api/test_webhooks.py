"""Standard Webhooks verification against the `standardwebhooks` package's own signer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from durable_graph.api.errors import ServiceMisconfigured, Unauthorized
from durable_graph.api.keys import new_webhook_secret
from durable_graph.api.webhooks import WebhookVerifier, check_secret
from durable_graph.clock import ManualClock

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Secrets:
    def __init__(self, *values: str) -> None:
        self.values = list(values)

    def secrets(self) -> list[str]:
        return self.values


def headers_for(secret: str, msg_id: str, when: datetime, body: bytes) -> dict[str, str]:
    """Headers as a sender using the reference library would send them."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_reference_library_signatures_verify() -> None:
    """Given a body signed with the standardwebhooks library
    When our verifier checks it (case-insensitive headers)
    Then it returns the webhook id."""
    secret = new_webhook_secret()
    body = b'{"input": {}}'
    headers = {k.upper(): v for k, v in headers_for(secret, "msg_1", NOW, body).items()}
    verifier = WebhookVerifier(Secrets(secret), ManualClock(NOW))
    assert verifier.verify(body, headers) == "msg_1"


def test_rotation_accepts_the_previous_secret_and_any_listed_signature() -> None:
    """Given a verifier with a new and a previous secret
    When a sender still signs with the previous one, listing a bogus signature first
    Then it verifies."""
    old, new = new_webhook_secret(), new_webhook_secret()
    body = b"{}"
    headers = headers_for(old, "msg_2", NOW, body)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert WebhookVerifier(Secrets(new, old), ManualClock(NOW)).verify(body, headers) == "msg_2"


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_beyond_five_minutes_are_refused(skew: int) -> None:
    """Given a correctly signed delivery whose timestamp is 301 s away from our clock
    When it is verified
    Then Unauthorized names the timestamp."""
    secret = new_webhook_secret()
    clock = ManualClock(NOW)
    headers = headers_for(secret, "msg_3", NOW, b"{}")
    clock.advance(-skew)
    with pytest.raises(Unauthorized) as caught:
        WebhookVerifier(Secrets(secret), clock).verify(b"{}", headers)
    assert caught.value.field == "webhook-timestamp"


@pytest.mark.parametrize(
    "signature", ["", "v1", "v1,", "v2,abc", "v1,!!!notbase64", "v1a,xyz v1 ,", "\u00e9"]
)
def test_malformed_signature_headers_are_refused_not_crashed(signature: str) -> None:
    """Given a malformed webhook-signature header
    When it is verified
    Then Unauthorized (never an exception a client would see as a 500)."""
    secret = new_webhook_secret()
    headers = headers_for(secret, "msg_4", NOW, b"{}")
    headers["webhook-signature"] = signature
    with pytest.raises(Unauthorized):
        WebhookVerifier(Secrets(secret), ManualClock(NOW)).verify(b"{}", headers)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("A" * 64, "does not start with 'whsec_'"),  # the stack's secrets before whsec_
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"x" * 8).decode(), "decodes to 8 bytes"),
        ("whsec_", "decodes to 0 bytes"),
    ],
)
def test_a_malformed_stored_secret_is_a_configuration_error_not_a_crash(
    secret: str, problem: str
) -> None:
    """Given a stored webhook secret that is not `whsec_<base64>` of 24-64 bytes
    When a signed request is verified
    Then ServiceMisconfigured (503) says what is wrong, without the secret itself."""
    headers = headers_for(new_webhook_secret(), "msg_5", NOW, b"{}")
    with pytest.raises(ServiceMisconfigured, match=problem) as caught:
        WebhookVerifier(Secrets(secret), ManualClock(NOW)).verify(b"{}", headers)
    assert caught.value.status == 503 and caught.value.field == "webhook_secret"
    assert secret.removeprefix("whsec_") not in str(caught.value) or len(secret) <= 6


def test_a_malformed_previous_secret_is_dropped_the_current_one_verifies() -> None:
    """Given the current secret in whsec_ form and a previous one from before it
    When a request signed with the current secret arrives
    Then it verifies (an upgraded stack keeps serving webhooks)."""
    current = new_webhook_secret()
    headers = headers_for(current, "msg_6", NOW, b"{}")
    verifier = WebhookVerifier(Secrets(current, "B" * 64), ManualClock(NOW))
    assert verifier.verify(b"{}", headers) == "msg_6"
    assert verifier.secrets() == [current]


def test_new_secrets_pass_the_check() -> None:
    secret = new_webhook_secret()
    assert check_secret(secret) == secret
