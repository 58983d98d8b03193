"""The sealed envelope (`encryption.py`, `docs/record-format.md` §14): envelope 2 compresses
before sealing only when that saves an eighth, binds its version and flags, and values sealed
as envelope 1 (before compression) still open, inline and as payloads."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from durable_graph.encryption import (
    FLAG_ZLIB,
    SealBroken,
    ThreadCipher,
    open_payload,
    payload_thread,
    seal_payload,
)

KEY = bytes(range(32))
TEXT = ("turn 7: lorem ipsum dolor sit amet " * 30).encode()


def envelope1(data: bytes, aad: bytes) -> bytes:
    """A box as the first release of encryption at rest wrote it: nonce || AES-GCM."""
    nonce = os.urandom(12)
    return nonce + AESGCM(KEY).encrypt(nonce, data, aad)


def test_compressible_text_is_deflated_before_sealing_and_noise_is_not() -> None:
    """Given 1 KB of repetitive text and 1 KB of random bytes
    When each is sealed
    Then the text's box is flagged deflated and far smaller than the text, the noise's box is
    flagged plain (deflating it saves nothing), and both open to what was sealed."""
    cipher = ThreadCipher(KEY)
    noise = os.urandom(len(TEXT))

    text_box, noise_box = cipher.seal(TEXT, b"a"), cipher.seal(noise, b"a")

    assert text_box[:2] == bytes((2, FLAG_ZLIB)) and len(text_box) < len(TEXT) // 4
    assert noise_box[:2] == bytes((2, 0)) and len(noise_box) == len(noise) + 2 + 12 + 16
    assert cipher.open(text_box, b"a") == TEXT and cipher.open(noise_box, b"a") == noise
    assert cipher.open_text(cipher.seal_text(TEXT, b"a"), b"a") == TEXT


def test_a_flipped_flag_or_version_does_not_open() -> None:
    """Given a deflated box
    When its flags byte or its version byte is changed
    Then it does not open (both are associated data)."""
    cipher = ThreadCipher(KEY)
    box = cipher.seal(TEXT, b"a")

    with pytest.raises(SealBroken):
        cipher.open(box[:1] + bytes((0,)) + box[2:], b"a")
    with pytest.raises(SealBroken):
        cipher.open(bytes((1,)) + box[1:], b"a")


def test_envelope_1_values_and_payloads_still_open() -> None:
    """Given an inline value and a payload sealed as envelope 1 (plain base64, magic dgx1)
    When they are read today
    Then they open to what was sealed, and a new payload is written as dgx2."""
    cipher = ThreadCipher(KEY)
    old_text = base64.b64encode(envelope1(TEXT, b"d")).decode()
    header = b"dgx1" + (2).to_bytes(2, "big") + b"t1"
    old_payload = header + envelope1(TEXT, header + b"text/plain")

    assert cipher.open_text(old_text, b"d") == TEXT
    assert payload_thread(old_payload) == "t1"
    assert open_payload(cipher, old_payload, "text/plain") == TEXT
    new = seal_payload(cipher, "t1", TEXT, "text/plain")
    assert new[:4] == b"dgx2" and open_payload(cipher, new, "text/plain") == TEXT
