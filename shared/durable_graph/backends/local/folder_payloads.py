"""PayloadStore on a local folder: `sha256/ab/<digest>`, written atomically, never overwritten.

A file's modification time is its stamp (`ports.payload_store`): the store's clock at the last
`put` of its bytes, set again by a put of bytes already there. `list_objects` walks the folder in
digest order (its 256 sub-folders sorted, then their files), skipping what is not an object (a
write's `.tmp-` file, a delete's `.doomed-` one)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from durable_graph.backends.local.storage_errors import storage_errors
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, SystemClock
from durable_graph.errors import PayloadCorrupted
from durable_graph.files import write_once
from durable_graph.ports.payload_store import IdleDelete, StoredObject

_DIGEST = re.compile(r"[0-9a-f]{64}")


class FolderPayloadStore:
    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # Reads build the file name as a string: a `Path` per object (three joins) was a
        # third of the time a cold read of a long thread spent reading its 158 segments.
        self._files = f"{root}/sha256/"
        self.clock = clock or SystemClock()

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        stamp = self.clock.now().timestamp()
        with storage_errors(f"writing payload {digest[:12]}"):
            try:
                os.utime(target, (stamp, stamp))  # the bytes are there: stamped again
            except FileNotFoundError:
                write_once(target, data)  # an existing payload has the same bytes
                os.utime(target, (stamp, stamp))

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

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        """Move the file aside (one atomic rename: a put after it writes the bytes anew), then
        delete it unless its stamp says it was put at `since` or later, in which case it goes
        back (unless a put wrote it anew meanwhile)."""
        target = self.path_for(ref.sha256)
        aside = target.with_name(f".doomed-{ref.sha256}-{uuid.uuid4().hex[:8]}")
        with storage_errors(f"deleting payload {ref.sha256[:12]}"):
            try:
                os.rename(target, aside)
            except FileNotFoundError:
                return "absent"
            if aside.stat().st_mtime < since.timestamp():
                aside.unlink()
                return "deleted"
            with contextlib.suppress(FileExistsError):
                os.link(aside, target)
            aside.unlink()
            return "in_use"

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        found: list[StoredObject] = []
        with storage_errors("listing payloads"):
            try:
                folders = sorted(os.listdir(self._files))
            except FileNotFoundError:
                return found
            for folder in folders:
                if len(folder) != 2 or folder < after[:2]:
                    continue
                try:
                    names = sorted(os.listdir(f"{self._files}{folder}"))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for name in names:
                    if name <= after or not _DIGEST.fullmatch(name):
                        continue
                    try:
                        info = os.stat(f"{self._files}{folder}/{name}")
                    except FileNotFoundError:  # deleted while listed
                        continue
                    stamp = datetime.fromtimestamp(info.st_mtime, UTC)
                    found.append(StoredObject(name, info.st_size, stamp))
                    if len(found) >= limit:
                        return found
        return found

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        if dry_run:
            return [d for d in digests if _mtime(self.path_for(d)) < since.timestamp()]
        return [d for d in digests if self.delete_if_idle(_ref(d), since) == "deleted"]


def _ref(digest: str) -> PayloadRef:
    """A ref to an object known by its digest alone (a listed one)."""
    return PayloadRef(uri=f"file://sha256/{digest}", sha256=digest, size=0)


def _mtime(path: Path) -> float:
    """The file's stamp; infinity when it is gone (nothing to delete)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
