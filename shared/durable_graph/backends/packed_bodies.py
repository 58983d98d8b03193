"""Row bodies with their sealed values as bytes, not base64 (the PostgreSQL store's `bytea`
bodies: `backends/postgres/`).

With encryption at rest (`encryption.py`) a row's JSON holds each sealed value as the string
`"~" + base64(box)`: a third more bytes than the box. A packed body keeps the JSON text around
those strings and the boxes themselves as bytes:

    MAGIC ‖ (varint len ‖ text ‖ varint len ‖ box)* ‖ varint len ‖ text

and `unpack` gives back exactly the row's JSON (each box as `"~" + base64`), so everything above
the store (parsing, hashing, verification) is unchanged. Only strings that are JSON *values*
starting with `~` and holding canonical base64 are packed: in compact JSON such a string's
opening quote follows `:`, `,`, `[` or `{`, never a backslash, so a `"~` inside another string
(always escaped, `\\"~`) is never taken for one, and a string that would not come back
byte-for-byte (non-canonical base64) stays text. A body with nothing to pack is its UTF-8 JSON,
which is also what every body written before packing is: a reader tells them apart by `MAGIC`
(JSON text never starts with a NUL byte).
"""

from __future__ import annotations

import base64
import re

MAGIC = b"\x00dgp1"
_SEALED = re.compile(rb'(?<=[:,\[{])"~([A-Za-z0-9+/]+={0,2})"')


def pack(text: str) -> bytes:
    """The stored bytes of a row whose JSON is `text`."""
    data = text.encode("utf-8")
    if b'"~' not in data:
        return data
    out = bytearray(MAGIC)
    last = 0
    for match in _SEALED.finditer(data):
        encoded = match.group(1)
        try:
            box = base64.b64decode(encoded, validate=True)
        except ValueError:  # not base64 after all (a length that is no multiple of 4)
            continue
        if base64.b64encode(box) != encoded:
            continue  # would not come back byte for byte: stays text
        _put(out, data[last : match.start()])
        _put(out, box)
        last = match.end()
    if last == 0:
        return data
    _put(out, data[last:])
    return bytes(out)


def unpack(stored: bytes | memoryview | str) -> str:
    """The row's JSON from its stored bytes (a body written before packing: its UTF-8)."""
    if isinstance(stored, str):
        return stored
    data = bytes(stored)
    if not data.startswith(MAGIC):
        return data.decode("utf-8")
    parts: list[bytes] = []
    at = len(MAGIC)
    text = True
    while at < len(data):
        size, at = _varint(data, at)
        chunk = data[at : at + size]
        if len(chunk) != size:
            raise ValueError("a packed row body is truncated")
        parts.append(chunk if text else b'"~' + base64.b64encode(chunk) + b'"')
        at += size
        text = not text
    if text:  # the last part read was a box: every body ends with text
        raise ValueError("a packed row body is truncated")
    return b"".join(parts).decode("utf-8")


def _put(out: bytearray, chunk: bytes) -> None:
    size = len(chunk)
    while size >= 0x80:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    out.append(size)
    out += chunk


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("a packed row body is truncated")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


__all__ = ["MAGIC", "pack", "unpack"]
