"""The digest of a recorded call's request (`ctx.record`), and how `replay` finds the call's
recorded answer by it (`docs/record-format.md` §5).

A request is never stored. Its digest is kept as the io record's `request_sha256` and names
the call (`io.name = f"{name}#{D[:16]}"`), so that a node calling twice with different requests
gets two answers and `replay` feeds each call its own. A plain sha256 of the request would let
anyone who reads the store or a bundle confirm a guessed request (an account number, a patient
id looked up through `ctx.record`), even after the io part is erased. So the digest is salted
with the io record's own salt `s`, one path with the other salted parts (`salted_parts.py`):
drawn when the call is made (sealing keeps it: `part_salts.salt_io`), stored beside the
response, and dropped with it by an erasure (`erasure_plan._without_io`), after which nothing
is left to test a guess against.

`request_sha256` says by its prefix how it was made (the format marker; no guessing):

    "$d:" + sha256(JCS({"s": s, "v": request}))      written since this release
    "$k:" + sha256(JCS({"s": k, "v": request}))      the same, encryption at rest on:
                                                     k = the thread's data key's HMAC of s
    64 hex, no prefix: sha256(JCS(request))          written before (plain; still read)

With encryption on, `s` stays in the clear beside the sealed response (the record's hash needs
it) and stays after the key is destroyed, so the request's salt is keyed by the data key
(`ThreadCipher.keyed_salt`): a store reader without the key, or anyone after key destruction,
cannot compute it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from durable_graph.canonical import sha256_hex
from durable_graph.checkpoint import IoRecord
from durable_graph.encryption import ThreadCipher
from durable_graph.salted_parts import new_salt, salted_chunk

SALTED = "$d:"  # `request_sha256` salted by the io record's salt
KEYED = "$k:"  # salted by the io record's salt keyed by the thread's data key


@dataclass(frozen=True)
class Call:
    """One recorded call as its io record names it: `key` (`io.name`), the marked
    `request_sha256`, and the io record's salt `s`."""

    key: str
    request_sha256: str
    salt: str


def memo_key(name: str, canonical: bytes) -> str:
    """What a task's runs (`tasks.TaskRunner`: every attempt of one delivery) remember a call's
    answer by, in memory only: a retry makes the same call and gets the same answer and the
    same salt, so it records the call as the first attempt did. The request's JCS text itself
    (UTF-8, so it decodes), not a digest of it: hashing it again would cost the call path a
    second sha256."""
    return f"{name}\x00{canonical.decode('utf-8')}"


def new_call(name: str, canonical: bytes, cipher: ThreadCipher | None) -> Call:
    """A call made now, with a fresh salt; `canonical`: the request's JCS bytes."""
    salt = new_salt()
    marked = _marked(canonical, salt, cipher)
    return Call(f"{name}#{marked[3:19]}", marked, salt)


def _marked(canonical: bytes, salt: str, cipher: ThreadCipher | None) -> str:
    if cipher is None:
        return SALTED + sha256_hex(salted_chunk(salt, canonical))
    return KEYED + sha256_hex(salted_chunk(cipher.keyed_salt(salt), canonical))


def recorded_key(
    name: str,
    canonical: bytes,
    recorded: Iterable[IoRecord],
    cipher: Callable[[], ThreadCipher],
) -> str | None:
    """The `io.name` of the recorded call `name` made with the request whose JCS bytes are
    `canonical`, among `recorded` (one task's io records), each matched by its own marker;
    None when none of them is that call. `cipher` is asked for the thread's cipher only when
    a record of an encrypted thread (`$k:`) is met."""
    plain: str | None = None
    prefix = f"{name}#"
    for io in recorded:
        marked = io.request_sha256
        if io.kind != "record" or marked is None or not io.name.startswith(prefix):
            continue
        if marked.startswith(SALTED) and io.s is not None:
            found = _marked(canonical, io.s, None)
        elif marked.startswith(KEYED) and io.s is not None:
            found = _marked(canonical, io.s, cipher())
        else:  # written before salted requests (or erased: then it matches nothing)
            plain = plain or sha256_hex(canonical)
            found = plain
        if found == marked:
            return io.name
    return None


__all__ = ["KEYED", "SALTED", "Call", "memo_key", "new_call", "recorded_key"]
