"""Per-thread data keys and the key-encryption key (KEK) that wraps them (envelope encryption).

Each encrypted thread has one data key (AES-256), created on its first write and kept beside
the chain as the small record `key#data` of the thread, *wrapped* (encrypted) by the store's
key-encryption key: a local key file in embedded mode (`LocalKeyFile`, beside the ledger's
signing key), a KMS key on AWS (`backends/aws/kms_keys.py`: GenerateDataKey / Decrypt). The
record is not part of the hash chain: it is the one thing erasure must be able to destroy, and
destroying it (replacing it with a tombstone that names the erasure) makes every copy of the
thread's values unreadable, wherever it is.

A process keeps the data keys it unwrapped in memory (LRU), so a step costs no key lookup after
the thread's first; another process that still holds a destroyed key in memory can read the
thread until it drops it (as with a cached state after an erasure, `docs/erasure-and-retention.md`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from durable_graph.encryption import KEY_BYTES, NONCE_BYTES, ThreadCipher, new_data_key
from durable_graph.errors import DataKeyUnavailable, InvalidInput, RecordConflict
from durable_graph.files import write_once
from durable_graph.ports.checkpoint_store import CheckpointStore

ENCRYPT_ENV = "DURABLE_GRAPH_ENCRYPT"
DATA_KEY = "key#data"
KEK_FILE = Path("keys") / "data-kek.key"  # beside signing.KEY_FILE
CACHE_KEYS = 4096
_ATTEMPTS = 10


class KeyWrapper(Protocol):
    """The key-encryption key: makes and opens wrapped data keys. `kek_id` names it in each
    key record (so a reader knows which KEK a key needs)."""

    @property
    def kek_id(self) -> str: ...

    def new_key(self, thread_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for `thread_id`: (plaintext, wrapped)."""
        ...

    def unwrap(self, thread_id: str, wrapped: bytes) -> bytes:
        """The data key `wrapped` holds; raises `DataKeyUnavailable` when it cannot."""
        ...


class LocalKeyFile:
    """The embedded mode's KEK: 32 random bytes in a file created on first use (mode 0600,
    atomically: two processes starting at once agree on one key). Data keys are wrapped with
    AES-256-GCM under it, the thread id as associated data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._aead: AESGCM | None = None
        self._id = ""

    def _load(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                if not self.path.exists():
                    write_once(self.path, os.urandom(KEY_BYTES).hex().encode(), private_dir=True)
                raw = bytes.fromhex(self.path.read_text().strip())
                if len(raw) != KEY_BYTES:
                    raise ValueError(f"{self.path} does not hold a {KEY_BYTES}-byte key")
                self._id = "local:" + hashlib.sha256(raw).hexdigest()[:16]
                self._aead = AESGCM(raw)
            return self._aead

    @property
    def kek_id(self) -> str:
        self._load()
        return self._id

    def new_key(self, thread_id: str) -> tuple[bytes, bytes]:
        key = new_data_key()
        nonce = os.urandom(NONCE_BYTES)
        return key, nonce + self._load().encrypt(nonce, key, _aad(thread_id))

    def unwrap(self, thread_id: str, wrapped: bytes) -> bytes:
        try:
            return self._load().decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(thread_id)
            )
        except (InvalidTag, ValueError) as exc:
            raise DataKeyUnavailable(
                thread_id, f"its data key does not unwrap with the key file {self.path}"
            ) from exc


def encryption_setting(text: str | None) -> bool | None:
    """`on`/`off` (and the usual spellings of yes and no) as a bool; None or "" → None."""
    if text is None or text.strip() == "":
        return None
    value = text.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise InvalidInput(f"encrypt: expected on or off, not {text!r}", field="encrypt")


def local_kek(folder: Path, encrypt: bool | None) -> LocalKeyFile | None:
    """The KEK file of a store whose key files live in `folder`: `encrypt` True or False
    decides; None: on iff `$DURABLE_GRAPH_ENCRYPT` is on or the file exists already."""
    path = folder / KEK_FILE
    if encrypt is None:
        encrypt = bool(encryption_setting(os.environ.get(ENCRYPT_ENV))) or path.exists()
    return LocalKeyFile(path) if encrypt else None


def _aad(thread_id: str) -> bytes:
    return b"dg:data-key:" + thread_id.encode("utf-8")


@dataclass(frozen=True)
class KeyState:
    """What a store holds of one thread's data key, for `verify` and erasure."""

    state: Literal["none", "live", "destroyed", "locked"]  # locked: present, not unwrappable
    cipher: ThreadCipher | None = None
    record: dict[str, Any] | None = None
    why: str = ""


class Keyring:
    """The data keys of one store's threads, wrapped by `wrapper`."""

    def __init__(
        self, store: CheckpointStore, wrapper: KeyWrapper, *, cache_keys: int = CACHE_KEYS
    ) -> None:
        self.store = store
        self.wrapper = wrapper
        self.cache_keys = cache_keys
        self._cache: OrderedDict[str, ThreadCipher] = OrderedDict()
        self._lock = threading.Lock()

    def ensure(self, thread_id: str) -> ThreadCipher:
        """The thread's cipher, its data key created (and stored wrapped) if it has none. The
        writer's path: after the thread's first step in this process, a dict lookup."""
        cached = self._cached(thread_id)
        if cached is not None:
            return cached
        for _ in range(_ATTEMPTS):
            found = self.store.get_record(thread_id, DATA_KEY)
            if found is not None:
                return self._open(thread_id, found.value)
            key, wrapped = self.wrapper.new_key(thread_id)
            record = {
                "alg": "AES-256-GCM",
                "kek": self.wrapper.kek_id,
                "wrapped": base64.b64encode(wrapped).decode("ascii"),
            }
            try:
                # Create iff absent: two writers racing on a new thread agree on the winner's key.
                self.store.put_record(thread_id, DATA_KEY, record, expected_version=None)
            except RecordConflict:
                continue
            return self._remember(thread_id, ThreadCipher(key))
        raise RecordConflict(f"{DATA_KEY} of {thread_id!r}")

    def cipher(self, thread_id: str) -> ThreadCipher:
        """The cipher of a thread whose values are sealed (raises `DataKeyUnavailable` when its
        key is gone or cannot be unwrapped here)."""
        cached = self._cached(thread_id)
        if cached is not None:
            return cached
        found = self.store.get_record(thread_id, DATA_KEY)
        if found is None:
            raise DataKeyUnavailable(thread_id, "the thread has no data key (it was deleted)")
        return self._open(thread_id, found.value)

    def lookup(self, thread_id: str) -> KeyState:
        """The key's state, never raising for a missing, destroyed or locked key."""
        found = self.store.get_record(thread_id, DATA_KEY)
        if found is None:
            return KeyState("none")
        if "wrapped" not in found.value:
            return KeyState("destroyed", record=found.value)
        try:
            return KeyState("live", self._open(thread_id, found.value), found.value)
        except DataKeyUnavailable as exc:
            return KeyState("locked", record=found.value, why=str(exc))

    def destroy(self, thread_id: str, *, at: str, erasure: int) -> bool:
        """Replace the wrapped key by a tombstone naming the erasure; False if there was no live
        key. Only the wrapped key is destroyed: the KEK stays, other threads need it."""
        self.forget(thread_id)
        for _ in range(_ATTEMPTS):
            found = self.store.get_record(thread_id, DATA_KEY)
            if found is None or "wrapped" not in found.value:
                return False
            tombstone = {
                "alg": found.value.get("alg", ""),
                "kek": found.value.get("kek", ""),
                "destroyed_at": at,
                "erasure": erasure,
            }
            try:
                self.store.put_record(
                    thread_id, DATA_KEY, tombstone, expected_version=found.version
                )
            except RecordConflict:
                continue
            self.forget(thread_id)
            return True
        raise RecordConflict(f"{DATA_KEY} of {thread_id!r}")

    def forget(self, thread_id: str) -> None:
        with self._lock:
            self._cache.pop(thread_id, None)

    def _open(self, thread_id: str, record: dict[str, Any]) -> ThreadCipher:
        if "wrapped" not in record:
            raise DataKeyUnavailable(
                thread_id,
                f"its data key was destroyed at {record.get('destroyed_at', '?')} "
                f"(erasure {record.get('erasure', '?')}): they can no longer be read",
            )
        wrapped = base64.b64decode(str(record["wrapped"]))
        return self._remember(thread_id, ThreadCipher(self.wrapper.unwrap(thread_id, wrapped)))

    def _cached(self, thread_id: str) -> ThreadCipher | None:
        with self._lock:
            found = self._cache.get(thread_id)
            if found is not None:
                self._cache.move_to_end(thread_id)
            return found

    def _remember(self, thread_id: str, cipher: ThreadCipher) -> ThreadCipher:
        with self._lock:
            self._cache[thread_id] = cipher
            while len(self._cache) > self.cache_keys:
                self._cache.popitem(last=False)
        return cipher


__all__ = [
    "DATA_KEY",
    "ENCRYPT_ENV",
    "KEK_FILE",
    "KeyState",
    "KeyWrapper",
    "Keyring",
    "LocalKeyFile",
    "encryption_setting",
    "local_kek",
]
