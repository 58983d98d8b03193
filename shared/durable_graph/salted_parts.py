"""Salted digests for the parts of a record that hold a thread's data besides its state: task
arguments, the interrupt payload, resume values, the error message and io responses
(`docs/record-format.md` §5, §13).

A state value is hashed by the digest of its salted chunk, `sha256(JCS({"s": salt, "v":
value}))`, never by the value itself, so erasing it (destroying the value and its salt) keeps
the record's hash and leaves nothing anyone could test a guess against. The other parts are
hashed the same way in records written since this release: each carries its own salt beside
it (`s` on the task, the interrupt, the error and the io record; `resume_s` on the record,
for each task the salts of its resume values, in order), and the hash body holds the part's
*digest form* in its place:

    a task's arg, an interrupt's payload, each resume value:  {"$d": D}
    an error's message:                                       "$d:" + D
    an io record:                                             response null, response_sha256 = D

with `D = sha256(JCS({"s": salt, "v": the part as stored}))` (sealed, or `{"$payload": ref}`,
where the record keeps it so). An erased part is stored as exactly that form, without its salt,
so its record hashes as it did (an erased resume value's salt is left as "", so the others
keep their places). A part without a salt (records written before, an erased one)
is hashed as it is stored, which is how older records always hashed: they verify unchanged.

The salt is drawn when the step is sealed (`StepSealer.seal`, `part_salts.py`), after
encryption at rest sealed the part, and the digest is never stored while the value is there:
it is derived from the salt and the value, so a value or salt changed in a row fails the
record's hash, and a digest changed in an erased row does too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

from durable_graph.canonical import canonical_bytes, sha256_hex

SALT_BYTES = 16
DIGEST = "$d"  # the digest form of a JSON part: {"$d": D}
DIGEST_TEXT = "$d:"  # the digest form of an error message: "$d:" + D


def chunk_bytes(salt: str, value: Any) -> bytes:
    """`JCS({"s": salt, "v": value})`. A salt of letters and digits (what the writer draws:
    hex) needs no escaping, so the chunk is the value's canonical form between two fixed
    pieces; any other salt (a tampered row the verifier reads) goes through JCS whole."""
    if not (salt.isascii() and salt.isalnum()):
        return canonical_bytes({"s": salt, "v": value})
    return salted_chunk(salt, canonical_bytes(value))


def salted_chunk(salt: str, canonical: bytes) -> bytes:
    """`chunk_bytes` of a value already in its canonical form (`canonical`), for a salt of
    letters and digits: a caller that also needs the value's bytes for something else (a
    recorded call's request, `request_digests.py`) encodes it once."""
    return b'{"s":"' + salt.encode() + b'","v":' + canonical + b"}"


def new_salt() -> str:
    """16 random bytes as 32 lowercase hex characters."""
    return os.urandom(SALT_BYTES).hex()


def new_salts(count: int) -> list[str]:
    """`count` salts, each as `new_salt` draws it (16 random bytes as 32 hex), cut from one
    read of the system's random source: a step seals one read, not one a part (each read is
    a call into the kernel)."""
    text = os.urandom(SALT_BYTES * count).hex()
    width = 2 * SALT_BYTES
    return [text[start : start + width] for start in range(0, len(text), width)]


def part_digest(salt: str, value: Any) -> str:
    return sha256_hex(chunk_bytes(salt, value))


def digest_form(salt: str, value: Any) -> dict[str, str]:
    """What the hash body holds for a salted JSON part, and an erased one's row keeps."""
    return {DIGEST: part_digest(salt, value)}


def is_digest_form(value: Any) -> bool:
    """A JSON part reduced to its salted digest (`{"$d": D}`): erased, where it has no salt."""
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(value.get(DIGEST), str)
        and len(value[DIGEST]) == 64
    )


def is_digest_text(text: str) -> bool:
    """An error message reduced to its salted digest: erased, where it has no salt."""
    return text.startswith(DIGEST_TEXT) and len(text) == len(DIGEST_TEXT) + 64


def text_digest_form(salt: str, text: str) -> str:
    return DIGEST_TEXT + part_digest(salt, text)


def commit_parts(body: dict[str, Any], resume_s: Mapping[str, list[str]]) -> None:
    """Put each salted part of a format-2 hash body (the record dumped as JSON) in its digest
    form, in place, and drop the salts: what the record's hash covers of its parts."""
    for task in body.get("next", ()):
        salt = task.pop("s", None)
        if salt is not None:
            task["arg"] = digest_form(salt, task["arg"])
    interrupt = body.get("interrupt")
    if interrupt is not None:
        salt = interrupt.pop("s", None)
        if salt is not None:
            interrupt["payload"] = digest_form(salt, interrupt["payload"])
    error = body.get("error")
    if error is not None:
        salt = error.pop("s", None)
        if salt is not None:
            error["message"] = text_digest_form(salt, error["message"])
    for io in body.get("io", ()):
        salt = io.pop("s", None)
        if salt is not None:
            io["response_sha256"] = part_digest(salt, io["response"])
            io["response"] = None
    if resume_s:
        resume = body["resume"]
        for task_id, salts in resume_s.items():
            values = resume.get(task_id)
            if values is not None:
                # A salt list that does not fit the values (an edited row) changes the body.
                resume[task_id] = [
                    digest_form(salt, value) if salt else value
                    for salt, value in zip_longest(salts, values, fillvalue="")
                ]


__all__ = [
    "DIGEST",
    "DIGEST_TEXT",
    "chunk_bytes",
    "commit_parts",
    "digest_form",
    "is_digest_form",
    "is_digest_text",
    "new_salt",
    "new_salts",
    "part_digest",
    "salted_chunk",
    "text_digest_form",
]
