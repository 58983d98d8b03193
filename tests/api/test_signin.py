"""Signing in to the explorer on AWS (`durable_graph.api.signin`, `explorer_auth.OidcAuth`): a
browser goes through the hosted UI and comes back with a session cookie; the ID token is
verified in the function against the pool's keys. The user pool, its tokens and its JWKS are
moto's (a moto server on 127.0.0.1); the hosted UI's two endpoints, which moto lacks, are a
stand-in (`hosted_ui.py`). The API is built from `ApiSettings` as the api function builds it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from durable_graph.api import build_resolver
from durable_graph.api.aws import ApiSettings, explorer_auth
from durable_graph.api.config import Api, ApiConfig
from durable_graph.api.explorer_auth import OidcAuth
from durable_graph.api.local import local_api
from durable_graph.api.signin import ID_COOKIE, SIGNIN_COOKIE
from durable_graph.backend import Backend
from durable_graph.backends.aws import names
from durable_graph.backends.local import local_backend
from durable_graph.clock import Clock, ManualClock
from tests.api.conftest import Client, Reply
from tests.api.hosted_ui import HostedUiStandIn, serving
from tests.aws.conftest import endpoint
from tests.helpers import thread_record

__all__ = ["endpoint"]  # the moto server fixture

GRAPH = "examples.email_approval:graph"
BASE = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
USER, PASSWORD = "reviewer@example.test", "Cc3#cccccccccc"


@dataclass
class Pool:
    cognito: Any
    pool_id: str
    client_id: str
    jwks_url: str

    def tokens(self, client_id: str | None = None, pool_id: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.cognito.admin_initiate_auth(
            UserPoolId=pool_id or self.pool_id,
            ClientId=client_id or self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USER, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        return result

    def new_client(self, pool_id: str | None = None) -> str:
        client_id: str = self.cognito.create_user_pool_client(
            UserPoolId=pool_id or self.pool_id,
            ClientName="explorer",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]["ClientId"]
        return client_id

    def new_pool(self) -> str:
        pool_id: str = self.cognito.create_user_pool(
            PoolName="explorer", UsernameAttributes=["email"]
        )["UserPool"]["Id"]
        self.cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=USER,
            UserAttributes=[{"Name": "email", "Value": USER}],
        )
        self.cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=USER, Password=PASSWORD, Permanent=True
        )
        return pool_id


@pytest.fixture(scope="module")
def pool(endpoint: str) -> Pool:
    """A user pool on moto like the stack's (email as user name; an administrator creates the
    user; MFA off: moto has no TOTP device to answer the challenge with)."""
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    made = Pool(cognito, "", "", "")
    made.pool_id = made.new_pool()
    made.client_id = made.new_client()
    made.jwks_url = f"{endpoint}/{made.pool_id}/.well-known/jwks.json"
    return made


@dataclass
class Deployed:
    client: Client
    ui: HostedUiStandIn
    auth: OidcAuth
    backend: Backend
    clock: ManualClock


def signin_api(
    pool: Pool, signin_url: str, backend: Backend, home: Path, base: str, clock: Clock
) -> tuple[Api, OidcAuth]:
    """The API as the api function builds it from its environment (explorer sign-in on
    `pool`, at `signin_url`), over `backend` with the keys of a local store in `home`."""
    settings = ApiSettings.from_env(
        {
            names.ENV_SIGNING_KEY_PARAM: "unused",
            names.ENV_WEBHOOK_SECRET_PARAM: "unused",
            names.ENV_PUBLIC_BASE_URL: base,
            names.ENV_GRAPH: GRAPH,
            names.ENV_EXPLORER_USER_POOL: pool.pool_id,
            names.ENV_EXPLORER_CLIENT_ID: pool.client_id,
            names.ENV_EXPLORER_SIGNIN_URL: signin_url,
            names.ENV_EXPLORER_JWKS_URL: pool.jwks_url,
        }
    )
    auth = explorer_auth(settings, clock)
    assert auth is not None
    local = local_api(home, backend, public_url=base, graphs=(GRAPH,)).config
    config = ApiConfig(
        backend=backend,
        keys=local.keys,
        webhook_secrets=local.webhook_secrets,
        auth=local.auth,
        public_base_url=base,
        graphs=(GRAPH,),
        clock=clock,
        explorer_auth=auth,
    )
    return Api(config), auth


@pytest.fixture
def deployed(pool: Pool, tmp_path: Path) -> Iterator[Deployed]:
    """The API as the api function builds it from its environment, over a store holding one
    suspended thread, signing in at the hosted-UI stand-in."""
    stand_in = HostedUiStandIn(pool.cognito, pool.pool_id, pool.client_id, USER, PASSWORD)
    clock = ManualClock(datetime.now(UTC))
    backend = local_backend(tmp_path, clock=clock)
    with serving(stand_in) as ui:
        api, auth = signin_api(pool, ui.url, backend, tmp_path, BASE, clock)
        backend.checkpoints.put_thread(thread_record("seen-1", "suspended"), expected_revision=None)
        try:
            yield Deployed(Client(build_resolver(api)), ui, auth, backend, clock)
        finally:
            backend.close()


BROWSER = {"Accept": "text/html"}


def _path(location: str) -> str:
    """A Location under the API's base URL, as API Gateway hands the path to the function."""
    assert location.startswith(BASE), location
    return location.removeprefix(BASE.removesuffix("/v1")).removeprefix("/v1")


def sign_in(deployed: Deployed, start: str = "/explorer?status=suspended") -> Reply:
    """A browser's whole round trip, from a page it may not see yet to the callback's reply."""
    first = deployed.client.request("GET", start, headers=BROWSER)
    assert first.status == 303 and b"seen-1" not in first.body
    login = deployed.client.request("GET", _path(first.headers["location"]), headers=BROWSER)
    assert login.status == 303
    attempt = _set_cookies(login)[SIGNIN_COOKIE]
    hosted = requests.get(login.headers["location"], allow_redirects=False, timeout=10)
    assert hosted.status_code == 302, hosted.text
    return deployed.client.request(
        "GET",
        _path(hosted.headers["Location"]),
        headers={**BROWSER, "Cookie": f"{SIGNIN_COOKIE}={attempt.value}"},
    )


def _set_cookies(reply: Reply) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for value in reply.set_cookies:
        jar.load(value)
    return dict(jar)


def test_a_browser_signs_in_through_the_hosted_ui_and_comes_back_to_its_page(
    deployed: Deployed,
) -> None:
    """Given no session, a browser asking for the suspended threads is sent to sign in, goes to
    the hosted UI with a PKCE challenge, comes back with a code, and lands on the page it asked
    for with an HttpOnly, Secure, SameSite=Lax session cookie over the API's base path; with
    it, the page shows the threads and its links stay under the stage."""
    first = deployed.client.request("GET", "/explorer?status=suspended", headers=BROWSER)
    assert first.status == 303
    assert (
        first.headers["location"] == f"{BASE}/explorer/login?next=%2Fexplorer%3Fstatus%3Dsuspended"
    )
    login = deployed.client.request("GET", _path(first.headers["location"]), headers=BROWSER)
    authorize = urlsplit(login.headers["location"])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        f"{deployed.ui.url}/oauth2/authorize"
    )
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"{BASE}/explorer/callback"
    assert query["scope"] == "openid email" and query["response_type"] == "code"
    attempt = _set_cookies(login)[SIGNIN_COOKIE]
    assert attempt["httponly"] and attempt["secure"] and attempt["samesite"] == "Lax"
    assert attempt["path"] == "/v1/explorer/callback"
    assert query["state"] in attempt.value and query["code_challenge"] not in attempt.value

    back = sign_in(deployed)
    assert back.status == 303, back.body
    assert back.headers["location"] == f"{BASE}/explorer?status=suspended"
    cookies = _set_cookies(back)
    session = cookies[ID_COOKIE]
    assert session["httponly"] and session["secure"] and session["samesite"] == "Lax"
    assert session["path"] == "/v1/" and 3000 < int(session["max-age"]) <= 3600
    assert cookies[SIGNIN_COOKIE]["max-age"] == "0"  # the attempt is spent
    assert deployed.ui.exchanged  # the code was exchanged at the token endpoint

    page = deployed.client.request(
        "GET",
        "/explorer?status=suspended",
        headers={**BROWSER, "Cookie": f"{ID_COOKIE}={session.value}"},
    )
    assert page.status == 200 and b"seen-1" in page.body
    assert 'href="/v1/explorer/threads/seen-1"' in page.text
    assert 'href="/explorer' not in page.text and 'src="/explorer' not in page.text


def test_the_signed_in_identity_is_the_pools_user(deployed: Deployed, pool: Pool) -> None:
    id_token = pool.tokens()["IdToken"]
    who = deployed.auth.identity(id_token)
    claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    assert who.method == "oidc" and who.person
    assert who.subject == claims["sub"] and who.email == USER
    assert who.issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{pool.pool_id}"
    assert who.actor.id == f"oidc:{USER}"


def test_a_program_sends_the_id_token_as_a_bearer(deployed: Deployed, pool: Pool) -> None:
    bearer = {"Authorization": f"Bearer {pool.tokens()['IdToken']}"}
    assert deployed.client.request("GET", "/explorer", headers=bearer).status == 200
    refused = deployed.client.request("GET", "/explorer", headers={"Authorization": "Bearer x.y.z"})
    assert refused.status == 401 and b"seen-1" not in refused.body
    assert refused.error["code"] == "unauthorized"


def _forged(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{body}.{signature}"


def _unsigned(token: str) -> str:
    _, payload, _ = token.split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"dummy"}').decode().rstrip("=")
    return f"{header}.{payload}."


@pytest.mark.parametrize(
    ("case", "check"),
    [
        ("access token", "token_use"),
        ("another app client", "audience"),
        ("another user pool", "issuer"),
        ("claims edited", "signature"),
        ("alg none", "alg"),
        ("expired", "expiry"),
    ],
)
def test_a_session_cookie_that_does_not_verify_shows_no_data(
    deployed: Deployed, pool: Pool, case: str, check: str
) -> None:
    """Every check of the ID token is made in the function: a cookie holding a token that
    fails one gets a browser sent to sign in and a program a 401 naming the check."""
    if case == "access token":
        token = pool.tokens()["AccessToken"]
    elif case == "another app client":
        token = pool.tokens(client_id=pool.new_client())["IdToken"]
    elif case == "another user pool":
        other = pool.new_pool()
        token = pool.tokens(client_id=pool.new_client(other), pool_id=other)["IdToken"]
    elif case == "claims edited":
        token = _forged(pool.tokens()["IdToken"], email="ceo@example.test")
    elif case == "alg none":
        token = _unsigned(pool.tokens()["IdToken"])
    else:
        token = pool.tokens()["IdToken"]
        deployed.clock.advance(2 * 3600)
    cookie = {"Cookie": f"{ID_COOKIE}={token}"}
    browser = deployed.client.request("GET", "/explorer", headers={**BROWSER, **cookie})
    assert browser.status == 303 and b"seen-1" not in browser.body
    assert "/explorer/login" in browser.headers["location"]
    program = deployed.client.request("GET", "/explorer", headers=cookie)
    assert program.status == 401 and b"seen-1" not in program.body
    assert f"{check}:" in program.error["message"]


def test_a_callback_that_does_not_match_this_browsers_sign_in_is_refused(
    deployed: Deployed,
) -> None:
    """A code replayed, a state from another attempt, a browser that never started, and the
    hosted UI's own refusal: each 401 with the reason, and no session cookie."""
    first = deployed.client.request("GET", "/explorer/login", headers=BROWSER)
    attempt = _set_cookies(first)[SIGNIN_COOKIE].value
    hosted = requests.get(first.headers["location"], allow_redirects=False, timeout=10)
    callback = _path(hosted.headers["Location"])
    cookie = {**BROWSER, "Cookie": f"{SIGNIN_COOKIE}={attempt}"}

    other_state = callback.replace("state=", "state=x")
    refused = deployed.client.request("GET", other_state, headers=cookie)
    assert refused.status == 401 and "state does not match" in refused.text
    no_attempt = deployed.client.request("GET", callback, headers=BROWSER)
    assert no_attempt.status == 401 and "no sign-in in progress" in no_attempt.text
    denied = deployed.client.request(
        "GET", "/explorer/callback?error=access_denied&state=s", headers=cookie
    )
    assert denied.status == 401 and "access_denied" in denied.text
    assert deployed.client.request("GET", callback, headers=cookie).status == 303
    replayed = deployed.client.request("GET", callback, headers=cookie)
    assert replayed.status == 401 and "invalid_grant" in replayed.text
    for reply in (refused, no_attempt, denied, replayed):
        assert ID_COOKIE not in _set_cookies(reply)


def test_next_is_a_path_on_this_api_only(deployed: Deployed) -> None:
    """An attacker's `next` cannot send a signed-in browser to another site."""
    for evil in ("https://evil.test/x", "//evil.test/x", "javascript:alert(1)"):
        login = deployed.client.request("GET", f"/explorer/login?next={evil}", headers=BROWSER)
        attempt = _set_cookies(login)[SIGNIN_COOKIE].value
        hosted = requests.get(login.headers["location"], allow_redirects=False, timeout=10)
        back = deployed.client.request(
            "GET",
            _path(hosted.headers["Location"]),
            headers={**BROWSER, "Cookie": f"{SIGNIN_COOKIE}={attempt}"},
        )
        assert back.headers["location"] == f"{BASE}/explorer"


def test_sign_out_forgets_the_session_here_and_at_the_hosted_ui(deployed: Deployed) -> None:
    reply = deployed.client.request("GET", "/explorer/logout", headers=BROWSER)
    assert reply.status == 303
    location = urlsplit(reply.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{deployed.ui.url}/logout"
    assert parse_qs(location.query)["logout_uri"] == [f"{BASE}/explorer"]
    cleared = _set_cookies(reply)[ID_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0" and cleared["path"] == "/v1/"
