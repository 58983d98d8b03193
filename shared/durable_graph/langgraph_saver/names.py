"""Where a LangGraph thread lives in the ledger: one ledger thread per (thread_id, checkpoint_ns,
generation), named so that the root namespace of a thread is the thread's own id.

    ("t1", "", 0)            -> "t1"             `durable-graph verify t1` checks it directly
    ("t1", "child:abc", 0)   -> "t1@child:abc"   a subgraph's checkpoints: a chain of their own
    ("t1", "", 2)            -> "t1~2"           the thread written again after two deletions

The mapping is injective: the characters the ledger refuses in a thread id ('/', '#', control
characters) and the two separators ('@', '~') are percent-encoded, and so is '%' itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote

from durable_graph.errors import InvalidInput
from durable_graph.threads import check_thread_id

GRAPH_NAME = "langgraph"  # the graph every record the saver writes names (`ledger.GRAPH`)
_ESCAPED = frozenset("%/#@~\x7f")


def quote(text: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED or ord(c) < 0x20 else c for c in text)


@dataclass(frozen=True)
class LedgerName:
    """A LangGraph (thread_id, checkpoint_ns) at one generation of the thread."""

    thread_id: str
    ns: str = ""
    generation: int = 0

    @cached_property
    def ledger_id(self) -> str:
        base = quote(self.thread_id) + (f"~{self.generation}" if self.generation else "")
        name = f"{base}@{quote(self.ns)}" if self.ns else base
        try:
            check_thread_id(name)
        except InvalidInput as exc:
            raise InvalidInput(
                f"LangGraph thread {self.thread_id!r} (namespace {self.ns!r}) maps to ledger "
                f"thread {name!r}, which is over 200 characters: use a shorter thread_id",
                field="thread_id",
            ) from exc
        return name

    @classmethod
    def parse(cls, ledger_id: str) -> LedgerName:
        """The inverse of `ledger_id`."""
        base, _, ns = ledger_id.partition("@")
        thread, _, generation = base.partition("~")
        return cls(unquote(thread), unquote(ns), int(generation) if generation else 0)


def manifest_thread(thread_id: str) -> str:
    """The ledger id whose small records hold the thread's manifest (generation, data key,
    namespaces): the root namespace's id at generation 0, whatever the current generation."""
    return LedgerName(thread_id).ledger_id


__all__ = ["GRAPH_NAME", "LedgerName", "manifest_thread", "quote"]
