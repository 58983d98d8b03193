"""LangGraph's `Command` and `Interrupt`, with the same fields and meaning.

A node may return `Command(update=..., goto=...)`: `update` is its state update, `goto` names
the nodes (or `Send`s) to run next *in addition to* its edges. `invoke(Command(resume=...))`
answers the `interrupt()`s a suspended thread waits on: one value when one interrupt is pending,
or a map `{interrupt id: value}` to answer several at once (the ids are those of the
`Interrupt`s in the `__interrupt__` list of the previous result).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from durable_graph.canonical import digest
from durable_graph.errors import InvalidInput
from durable_graph.spec import Send

__all__ = ["Command", "Interrupt", "goto_targets", "interrupt_id", "nested_interrupt_id"]


@dataclass(frozen=True)
class Interrupt:
    """A pending `interrupt(value)`: `value` is its payload, `id` what a resume map names."""

    value: Any
    id: str


def interrupt_id(task_id: str, index: int) -> str:
    """The id of the `index`-th `interrupt()` call of a task: stable across the task's
    re-runs and resumes (it is what `Command(resume={id: value})` names)."""
    return digest([task_id, index])[:32]


def nested_interrupt_id(task_id: str, inner_id: str) -> str:
    """The id under which a parent lists interrupt `inner_id` of the subgraph its task
    `task_id` runs: distinct across the parent's tasks (two runs of one subgraph have the
    same inner ids), stable while it is pending."""
    return digest([task_id, inner_id])[:32]


@dataclass(frozen=True)
class Command:
    """Update the state and choose what runs next from a node, or resume a suspended thread.

    Attributes:
        update: state update (a dict of fields, or a model), as a node would return it.
        goto: a node name, a `Send`, or a sequence of them: run after this node, besides its
            edges. Returned from a node only.
        resume: the value `interrupt()` returns when the thread resumes, or a map
            `{interrupt id: value}` answering several pending interrupts in one call.
        graph: LangGraph's target graph; only `None` (this graph) is supported.
    """

    PARENT: ClassVar[str] = "__parent__"

    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: str | Send | Sequence[str | Send] = field(default=())

    def __post_init__(self) -> None:
        if self.graph is not None:
            raise InvalidInput(
                f"Command(graph={self.graph!r}) is not supported: a node's Command acts on its "
                "own graph (a subgraph's node cannot route its parent; return a value and "
                "route in the parent instead)",
                field="graph",
            )

    def targets(self) -> list[str | Send]:
        """`goto` as a list of node names and `Send`s."""
        return goto_targets(self.goto)


def goto_targets(goto: Any) -> list[str | Send]:
    """Normalise a `goto` (a name, a `Send`, a sequence of them) into a list, refusing the rest."""
    if goto is None:
        return []
    items = [goto] if isinstance(goto, str | Send) else list(goto)
    for item in items:
        if not isinstance(item, str | Send):
            raise InvalidInput(
                f"Command.goto takes node names and Send objects, not {type(item).__name__}",
                field="goto",
            )
    return items


def resume_map(resume: Any) -> Mapping[str, Any] | None:
    """A resume value that names interrupt ids (a dict whose keys all look like ids), else None."""
    if isinstance(resume, Mapping) and resume and all(_is_id(k) for k in resume):
        return resume
    return None


def _is_id(key: Any) -> bool:
    return isinstance(key, str) and len(key) == 32 and all(c in "0123456789abcdef" for c in key)
