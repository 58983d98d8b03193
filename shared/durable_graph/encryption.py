"""Encryption at rest with per-thread data keys: the one AES-GCM path of durable-graph, shared by
the engine's records (`sealing.py`, `backends/records.py`) and the LangGraph saver
(`langgraph_saver/cipher.py`). `docs/record-format.md` §14 is the contract.

Why per thread: erasure of a whole thread becomes *key destruction* (crypto-shredding,
DESIGN.md §4). The ledger's digests are computed over the plaintext exactly as without
encryption, so every hash, state root and signature verifies the same; what a sealed value adds
is that its bytes, wherever they were copied (backups, replicas, S3 object versions, an exported
bundle), are unreadable once the thread's data key is gone.

What is sealed, each with AES-256-GCM under the thread's data key and a fresh 96-bit nonce, as
an *envelope-2 box* (`ThreadCipher.seal`: `0x02 || flags || nonce || AESGCM(data')`, `data'`
deflated first when that saves an eighth; text form `"~" + base64`):

- a change kept inline: `{op, d, e}`, `e` the text form of the box of the salted chunk of §3
  (`JCS({"s": salt, "v": value})`), with `d` as associated data: a sealed value cannot be moved
  to another change, and opening it gives the bytes `d` is the digest of;
- a recorded io response, a task argument, an interrupt payload, a resume value:
  `{"$sealed": text form}` (`seal_value`, associated data per kind: `dg:io`, `dg:arg`...), and
  an error message as `"$sealed:" + text form` (`sealed_fields.py`). This form is what the
  record's hash covers, so the chain verifies without the key, before and after the key is
  destroyed;
- every payload a thread writes (chunks, `$payload` strings, task and io lists, snapshots,
  segments): the bytes `"dgx2" || u16 length || thread id || box`, with the header and the
  payload's content type as associated data, stored under a content type ending in
  `SEALED_SUFFIX` and addressed by the sha256 of those sealed bytes.

Envelope 1 (`nonce || AESGCM(data)`, plain base64, payloads `"dgx1"`), written before
compression, is still read (`open_text`, `open_payload`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import zlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Change, PayloadRef

KEY_BYTES = 32
NONCE_BYTES = 12
ALGORITHM = "AES-256-GCM"
SEALED_SUFFIX = "; sealed=aes-256-gcm"  # a sealed payload's content type ends with this
SEALED = "$sealed"  # the marker of a sealed io response
_MAGIC = b"dgx1"  # a payload sealed before envelope 2 (still read)
_MAGIC2 = b"dgx2"
_IO_AAD = b"dg:io"
ENVELOPE = 2  # the first byte of every envelope-2 box
FLAG_ZLIB = 0x01  # the sealed bytes are raw deflate of the data
TEXT2 = "~"  # the text form of an envelope-2 box: "~" + base64 (base64 never holds "~")
COMPRESS_FROM = 64  # bytes; a shorter plaintext is sealed as it is


class SealBroken(ValueError):
    """Sealed bytes that do not open with the key: altered, truncated, or another key's."""


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


class ThreadCipher:
    """AES-256-GCM under one data key (thread-safe: AESGCM holds no per-call state)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a data key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        # The key of deterministic nonces (`seal(..., deterministic=True)`): derived, so it is
        # never the AES key itself.
        self._nonce_key = hmac.digest(key, b"dg:deterministic-nonce", hashlib.sha256)

    def seal(self, data: bytes, aad: bytes, *, deterministic: bool = False) -> bytes:
        """The envelope-2 box of `data`: `0x02 || flags || nonce || AES-GCM(data')`, where
        `data'` is `data` deflated when that saves an eighth or more (flag `FLAG_ZLIB`); the
        version and flags are part of the associated data, so neither can be flipped.

        The nonce is random, or with `deterministic` the first 12 bytes of
        `HMAC-SHA256(nonce key, len(aad) || aad || data)` (a synthetic IV, as SIV modes
        derive it): the same data sealed twice under one thread's key gives the same box, so a
        content-addressed object keeps its address (`ctx.save`), and two different data never
        share a nonce but by a 96-bit collision. What it reveals is only that two boxes of
        one thread hold the same bytes; another thread's key gives other bytes. Readers open
        both kinds alike."""
        flags, packed = 0, data
        if len(data) >= COMPRESS_FROM:
            deflated = _deflate(data)
            if len(deflated) <= len(data) - len(data) // 8:
                flags, packed = FLAG_ZLIB, deflated
        head = bytes((ENVELOPE, flags))
        if deterministic:
            tag = len(aad).to_bytes(4, "big") + aad + data
            nonce = hmac.digest(self._nonce_key, tag, hashlib.sha256)[:NONCE_BYTES]
        else:
            nonce = os.urandom(NONCE_BYTES)
        return head + nonce + self._aead.encrypt(nonce, packed, aad + head)

    def keyed_salt(self, salt: str) -> str:
        """`salt` keyed by this thread's data key (`HMAC-SHA256(HMAC-SHA256(nonce key,
        "dg:request-salt"), salt)`, its first 16 bytes as 32 hex; the nonce key is derived from
        the data key, `__init__`): the salt of a recorded
        call's request digest on an encrypted thread (`request_digests.py`), which the salt
        stored in the clear beside a sealed response does not give, and which no one can
        compute once the key is destroyed."""
        derived = hmac.digest(self._nonce_key, b"dg:request-salt", hashlib.sha256)
        return hmac.digest(derived, salt.encode("ascii"), hashlib.sha256)[:16].hex()

    def open(self, box: bytes, aad: bytes) -> bytes:
        """The data an envelope-2 box (`seal`) holds."""
        if len(box) < 2 + NONCE_BYTES or box[0] != ENVELOPE or box[1] & ~FLAG_ZLIB:
            raise SealBroken("not an envelope-2 sealed value")
        packed = self.open_envelope1(box[2:], aad + box[:2])
        if not box[1] & FLAG_ZLIB:
            return packed
        try:
            return zlib.decompress(packed, -15)
        except zlib.error as exc:  # authenticated, so only a bug gets here
            raise SealBroken(f"sealed bytes do not inflate: {exc}") from exc

    def open_envelope1(self, box: bytes, aad: bytes) -> bytes:
        """The data an envelope-1 box (`nonce || AES-GCM(data)`, before compression) holds."""
        try:
            return self._aead.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as exc:
            raise SealBroken("sealed bytes do not open with the thread's data key") from exc

    def seal_text(self, data: bytes, aad: bytes) -> str:
        """The text form of `seal`: `"~" + base64(box)`."""
        return TEXT2 + base64.b64encode(self.seal(data, aad)).decode("ascii")

    def open_text(self, text: str, aad: bytes) -> bytes:
        """The data of a text-form box: envelope 2 (`~…`) or envelope 1 (base64 of
        `nonce || AES-GCM(data)`, written before envelope 2)."""
        v2 = text.startswith(TEXT2)
        try:
            raw = base64.b64decode(text[1:] if v2 else text, validate=True)
        except ValueError as exc:
            raise SealBroken(f"not base64: {exc}") from exc
        return self.open(raw, aad) if v2 else self.open_envelope1(raw, aad)


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)  # raw deflate: GCM already checks it
    return packer.compress(data) + packer.flush()


# ---------------------------------------------------------------------------- changes


def seal_change(change: Change, chunk: bytes, cipher: ThreadCipher) -> Change:
    """The inline change `{op, d, s, v}` as its sealed row keeps it: `{op, d, e}`."""
    return Change(op=change.op, d=change.d, e=cipher.seal_text(chunk, change.d.encode("ascii")))


def open_change(change: Change, cipher: ThreadCipher) -> bytes:
    """The chunk bytes of a sealed change (raises `SealBroken`)."""
    return cipher.open_text(str(change.e), change.d.encode("ascii"))


def chunk_value(chunk: bytes) -> Any:
    doc = json.loads(chunk)
    return doc.get("v") if isinstance(doc, dict) else None


# ---------------------------------------------------------------------------- io responses


def is_sealed_io(value: Any) -> bool:
    """A sealed JSON value (`seal_value`): an io response, a task argument, a payload..."""
    return isinstance(value, dict) and len(value) == 1 and SEALED in value


def seal_value(value: Any, cipher: ThreadCipher, aad: bytes) -> dict[str, str]:
    """`{"$sealed": text form of box(compact JSON of value)}`."""
    return {SEALED: cipher.seal_text(compact_json(value).encode("utf-8"), aad)}


def open_value(value: Any, cipher: ThreadCipher, aad: bytes) -> Any:
    """The value a `seal_value` form holds (anything else is returned as it is)."""
    if not is_sealed_io(value):
        return value
    try:
        return json.loads(cipher.open_text(str(value[SEALED]), aad))
    except ValueError as exc:
        if isinstance(exc, SealBroken):
            raise
        raise SealBroken(f"a sealed value is not JSON: {exc}") from exc


def seal_io(response: Any, cipher: ThreadCipher) -> dict[str, str]:
    return seal_value(response, cipher, _IO_AAD)


def open_io(value: Any, cipher: ThreadCipher) -> Any:
    """The response a sealed io value holds (anything else is returned as it is)."""
    return open_value(value, cipher, _IO_AAD)


# ---------------------------------------------------------------------------- payloads


def is_sealed(ref: PayloadRef) -> bool:
    return ref.content_type.endswith(SEALED_SUFFIX)


def sealed_type(content_type: str) -> str:
    return content_type + SEALED_SUFFIX


def plain_type(content_type: str) -> str:
    """The content type of what a sealed payload holds."""
    return content_type.removesuffix(SEALED_SUFFIX)


def seal_payload(
    cipher: ThreadCipher,
    thread_id: str,
    data: bytes,
    content_type: str,
    *,
    deterministic: bool = False,
) -> bytes:
    """`"dgx2" || u16 len || thread id || box`; `deterministic`: the same bytes every time
    (`ThreadCipher.seal`), for objects addressed by what they hold (`ctx.save`)."""
    tid = thread_id.encode("utf-8")
    header = _MAGIC2 + len(tid).to_bytes(2, "big") + tid
    aad = header + content_type.encode("utf-8")
    return header + cipher.seal(data, aad, deterministic=deterministic)


def payload_thread(box: bytes) -> str:
    """The thread whose key sealed `box` (raises `SealBroken` on bytes that are not a box)."""
    if box[:4] not in (_MAGIC, _MAGIC2) or len(box) < 6:
        raise SealBroken("not a sealed payload")
    size = int.from_bytes(box[4:6], "big")
    try:
        return box[6 : 6 + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SealBroken("a sealed payload's header is not UTF-8") from exc


def open_payload(cipher: ThreadCipher, box: bytes, content_type: str) -> bytes:
    size = int.from_bytes(box[4:6], "big")
    header = box[: 6 + size]
    aad = header + content_type.encode("utf-8")
    if box[:4] == _MAGIC:
        return cipher.open_envelope1(box[6 + size :], aad)
    return cipher.open(box[6 + size :], aad)


__all__ = [
    "ALGORITHM",
    "SEALED",
    "SEALED_SUFFIX",
    "SealBroken",
    "ThreadCipher",
    "chunk_value",
    "is_sealed",
    "is_sealed_io",
    "new_data_key",
    "open_change",
    "open_io",
    "open_payload",
    "open_value",
    "payload_thread",
    "plain_type",
    "seal_change",
    "seal_io",
    "seal_payload",
    "seal_value",
    "sealed_type",
]
