"""Server-side secrets: the approval-link signing keys, the webhook secret and the local API key.

A `KeyProvider` hands out the key that signs new tokens (with its id) and any key by id, so keys
rotate without breaking links already sent: a token names the key that signed it. Locally the
keys live in `$DURABLE_GRAPH_HOME/keys/` (files 0600, folder 0700); on AWS in Secrets Manager (or
an SSM SecureString parameter), where the key id is the secret's version id. The AWS providers
take an already-built client, so this module never imports boto3.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from durable_graph.files import write_once

MIN_KEY_BYTES = 32


class KeyProvider(Protocol):
    def current(self) -> tuple[str, bytes]:
        """The key id and key that sign new tokens."""
        ...

    def key(self, key_id: str) -> bytes | None:
        """The key with this id, or None if unknown (retired keys are unknown)."""
        ...


class SecretSource(Protocol):
    def secrets(self) -> Sequence[str]:
        """Every secret currently accepted (the current one first; the previous during rotation)."""
        ...


# ---------------------------------------------------------------------------- local files


def _write_private(path: Path, text: str) -> None:
    """Create `path` whole with mode 0600 unless it exists: two servers starting at once both
    read the one complete file that won (never an empty, half-written one)."""
    write_once(path, text.encode("utf-8"), private_dir=True)


def local_secret(path: Path, make: Any) -> str:
    """Read the secret in `path`, creating it with `make()` the first time."""
    if not path.exists():
        _write_private(path, make())
    return path.read_text(encoding="utf-8").strip()


class LocalKeyFile:
    """A key ring in one JSON file: `{"current": id, "keys": {id: base64 key}}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        if not path.exists():
            _write_private(path, json.dumps(_new_ring({})))

    def _ring(self) -> dict[str, Any]:
        ring: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return ring

    def current(self) -> tuple[str, bytes]:
        ring = self._ring()
        key_id = str(ring["current"])
        return key_id, base64.b64decode(ring["keys"][key_id])

    def key(self, key_id: str) -> bytes | None:
        encoded = self._ring()["keys"].get(key_id)
        return base64.b64decode(encoded) if isinstance(encoded, str) else None

    def rotate(self, *, retire: Sequence[str] = ()) -> str:
        """Make a new key current; old keys keep verifying until listed in `retire`."""
        with self._lock:
            ring = _new_ring(self._ring()["keys"])
            for key_id in retire:
                ring["keys"].pop(key_id, None)
            tmp = self.path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            _write_private(tmp, json.dumps(ring))
            os.replace(tmp, self.path)
            return str(ring["current"])


def _new_ring(keys: Mapping[str, str]) -> dict[str, Any]:
    key_id = f"k{int(time.time())}-{secrets.token_hex(3)}"
    return {
        "current": key_id,
        "keys": {**keys, key_id: base64.b64encode(secrets.token_bytes(32)).decode()},
    }


class LocalSecret:
    """One secret in a file, for `SecretSource` users (the webhook verifier)."""

    def __init__(self, path: Path, make: Any) -> None:
        self.value = local_secret(path, make)

    def secrets(self) -> Sequence[str]:
        return [self.value]


def new_webhook_secret() -> str:
    """Standard Webhooks format: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------------------- AWS


class SecretsManagerClient(Protocol):
    def get_secret_value(
        self, *, SecretId: str, VersionId: str = ..., VersionStage: str = ...
    ) -> Any: ...


class SsmClient(Protocol):
    def get_parameter(self, *, Name: str, WithDecryption: bool = ...) -> Any: ...


class _Ring:
    """The current and the previous key, refreshed every `ttl` seconds (a warm Lambda does not
    fetch per request), and at most every `min_refresh` seconds when a token names a key id we
    do not know (a rotation just happened). Only these two keys verify: a key id chosen by an
    attacker never reaches the secret store, and nothing unbounded is cached."""

    def __init__(self, fetch: Any, ttl: float, min_refresh: float = 10.0) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._at = -1e18
        self._current: tuple[str, bytes] | None = None
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        current, keys = self.fetch()
        self._current, self._keys, self._at = current, keys, time.monotonic()

    def current(self) -> tuple[str, bytes]:
        with self._lock:
            if self._current is None or time.monotonic() - self._at > self.ttl:
                self._refresh()
            assert self._current is not None
            return self._current

    def all(self) -> list[bytes]:
        """Every key that verifies, the current one first."""
        key_id, key = self.current()
        with self._lock:
            return [key] + [k for i, k in self._keys.items() if i != key_id]

    def key(self, key_id: str) -> bytes | None:
        with self._lock:
            age = time.monotonic() - self._at
            if age > self.ttl or (key_id not in self._keys and age > self.min_refresh):
                self._refresh()
            return self._keys.get(key_id)


def _key_bytes(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) < MIN_KEY_BYTES:
        raise ValueError(f"signing key is {len(data)} bytes; at least {MIN_KEY_BYTES} required")
    return data


class SecretsManagerKeys:
    """Key ring in one Secrets Manager secret: the key id is the secret's VersionId, so after a
    rotation new links are signed with AWSCURRENT while links signed with AWSPREVIOUS verify."""

    def __init__(self, client: SecretsManagerClient, secret_id: str, *, ttl: float = 300.0) -> None:
        self.client = client
        self.secret_id = secret_id
        self._ring = _Ring(self._fetch, ttl)

    def _fetch(self) -> tuple[tuple[str, bytes], dict[str, bytes]]:
        keys: dict[str, bytes] = {}
        current: tuple[str, bytes] | None = None
        for stage in ("AWSCURRENT", "AWSPREVIOUS"):
            try:
                reply = self.client.get_secret_value(SecretId=self.secret_id, VersionStage=stage)
            except Exception as exc:  # botocore ClientError, recognised without botocore
                if stage == "AWSPREVIOUS" and _is_missing(exc):
                    continue
                raise
            key_id, key = str(reply["VersionId"]), _key_bytes(reply["SecretString"])
            keys[key_id] = key
            current = current or (key_id, key)
        assert current is not None
        return current, keys

    def current(self) -> tuple[str, bytes]:
        return self._ring.current()

    def key(self, key_id: str) -> bytes | None:
        return self._ring.key(key_id)


class SsmParameterKeys:
    """Key ring in one SSM SecureString parameter: the key id is the parameter version; the
    current and the previous version verify."""

    def __init__(self, client: SsmClient, name: str, *, ttl: float = 300.0) -> None:
        self.client = client
        self.name = name
        self._ring = _Ring(self._fetch, ttl)

    def _fetch(self) -> tuple[tuple[str, bytes], dict[str, bytes]]:
        parameter = self.client.get_parameter(Name=self.name, WithDecryption=True)["Parameter"]
        version = int(parameter["Version"])
        current = (str(version), _key_bytes(parameter["Value"]))
        keys = {current[0]: current[1]}
        if version > 1:
            try:
                previous = self.client.get_parameter(
                    Name=f"{self.name}:{version - 1}", WithDecryption=True
                )["Parameter"]
                keys[str(version - 1)] = _key_bytes(previous["Value"])
            except Exception as exc:
                if not _is_missing(exc):
                    raise
        return current, keys

    def current(self) -> tuple[str, bytes]:
        return self._ring.current()

    def key(self, key_id: str) -> bytes | None:
        return self._ring.key(key_id)

    def all(self) -> list[bytes]:
        return self._ring.all()


class SecretsManagerSecrets:
    """The webhook secret from Secrets Manager: AWSCURRENT, plus AWSPREVIOUS while rotating."""

    def __init__(self, client: SecretsManagerClient, secret_id: str, *, ttl: float = 300.0) -> None:
        self.client = client
        self.secret_id = secret_id
        self.ttl = ttl
        self._cached: tuple[float, list[str]] | None = None

    def secrets(self) -> Sequence[str]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            values = []
            for stage in ("AWSCURRENT", "AWSPREVIOUS"):
                try:
                    reply = self.client.get_secret_value(
                        SecretId=self.secret_id, VersionStage=stage
                    )
                except Exception as exc:
                    if stage == "AWSPREVIOUS" and _is_missing(exc):
                        continue
                    raise
                values.append(str(reply["SecretString"]))
            self._cached = (now, values)
        return self._cached[1]


def _is_missing(exc: Exception) -> bool:
    """botocore `ClientError` for an unknown version, without importing botocore."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return False
    code = response.get("Error", {}).get("Code", "")
    return code in {
        "ResourceNotFoundException",
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "ValidationException",
        "InvalidParameterException",
    }


class SsmParameterSecrets:
    """The webhook secret from an SSM SecureString parameter: current and previous version."""

    def __init__(self, client: SsmClient, name: str, *, ttl: float = 300.0) -> None:
        self.keys = SsmParameterKeys(client, name, ttl=ttl)

    def secrets(self) -> Sequence[str]:
        return [key.decode("utf-8") for key in self.keys.all()]
