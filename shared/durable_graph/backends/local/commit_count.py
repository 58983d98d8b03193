"""Telling durable commits from relaxed ones in a statement trace (`Database.trace`): what the
benchmarks and the fsync-budget test count.
"""

from __future__ import annotations

# How a relaxed write commits: a COMMIT (SQLite ignores the comment) that `DurableCommits`, the
# benchmarks and a reader of a statement trace can tell from a durable one, which syncs after it.
RELAXED_COMMIT = "COMMIT /* relaxed */"


class DurableCommits:
    """A `Database.trace` callback that counts commits, durable (fsynced) and relaxed apart:
    what the benchmarks and the fsync-budget test report."""

    def __init__(self) -> None:
        self.durable = 0
        self.relaxed = 0
        self._relaxing = False

    def __call__(self, statement: str) -> None:
        head = statement.lstrip()[:32].upper()
        if head.startswith("PRAGMA SYNCHRONOUS"):  # a connection that switches (not ours)
            self._relaxing = "NORMAL" in head
        elif head.startswith("COMMIT"):
            if self._relaxing or head == RELAXED_COMMIT.upper():
                self.relaxed += 1
            else:
                self.durable += 1

    def __repr__(self) -> str:
        return f"DurableCommits(durable={self.durable}, relaxed={self.relaxed})"


__all__ = ["RELAXED_COMMIT", "DurableCommits"]
