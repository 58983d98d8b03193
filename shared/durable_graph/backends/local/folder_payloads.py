"""PayloadStore on a local folder: `sha256/ab/<digest>`, written atomically, never overwritten."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from durable_graph.checkpoint import PayloadRef
from durable_graph.errors import PayloadCorrupted


class FolderPayloadStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write to a temp file, fsync, then link into place: readers never see a partial
            # file, and an existing payload (same bytes by construction) is left untouched.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, target)
            finally:
                os.unlink(tmp)
        return PayloadRef(
            uri=f"file://{target}", sha256=digest, size=len(data), content_type=content_type
        )

    def get(self, ref: PayloadRef) -> bytes:
        target = self.path_for(ref.sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError as exc:
            raise PayloadCorrupted(f"payload {ref.sha256} is missing from {self.root}") from exc
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PayloadCorrupted(f"payload {ref.sha256} does not match its digest")
        return data
