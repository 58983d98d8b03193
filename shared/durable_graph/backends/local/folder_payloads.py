"""PayloadStore on a local folder: `sha256/ab/<digest>`, written atomically, never overwritten."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted
from durable_graph.files import write_once


class FolderPayloadStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # Reads build the file name as a string: a `Path` per object (three joins) was a
        # third of the time a cold read of a long thread spent reading its 158 segments.
        self._files = f"{root}/sha256/"

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            with storage_errors(f"writing payload {digest[:12]}"):
                write_once(target, data)  # an existing payload has the same bytes

        return PayloadRef(
            uri=f"file://{target}", sha256=digest, size=len(data), content_type=content_type
        )

    def get(self, ref: PayloadRef) -> bytes:
        digest = ref.sha256
        try:
            with open(f"{self._files}{digest[:2]}/{digest}", "rb") as file:
                data = file.read()
        except FileNotFoundError as exc:
            raise PayloadCorrupted(f"payload {digest} is missing from {self.root}") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise PayloadCorrupted(f"payload {digest} does not match its digest")
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        """One after another: a local file read costs less than handing it to a thread
        (`payload_batches.py`)."""
        return [self.get(ref) for ref in refs]

    def delete(self, ref: PayloadRef) -> bool:
        target = self.path_for(ref.sha256)
        with storage_errors(f"deleting payload {ref.sha256[:12]}"):
            try:
                target.unlink()
            except FileNotFoundError:
                return False
        return True
