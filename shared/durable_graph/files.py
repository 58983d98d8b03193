"""Write-once files for the embedded mode: payloads, key files, copies of outbox rows.

A file is written to a private temp file (mkstemp: mode 0600), flushed to disk (unless the
caller keeps the durable copy elsewhere: `sync=False`), then hard-linked into place. Readers
never see a partial file, and when two processes race to create the same file, the first
complete one wins and the other's bytes are dropped — which is what both a content-addressed
payload (same bytes by construction) and a key created on first use need.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_once(path: Path, data: bytes, *, private_dir: bool = False, sync: bool = True) -> bool:
    """Create `path` with `data` unless it exists; True if this call created it. `sync=False`
    skips the fsync: for a convenience copy of something a database already holds durably."""
    if private_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.parent.chmod(0o700)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except FileNotFoundError:  # the folder's first file: make it (not a stat per file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` (an existing write-once file: erasure rewriting a copy) with `data`
    atomically: readers see the old bytes or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
