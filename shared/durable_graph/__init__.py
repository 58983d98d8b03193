"""durable-graph: durable, auditable execution for AI agent graphs.

Every step is committed as an immutable, hash-chained checkpoint before the next is scheduled;
any process may die; a thread can suspend for days and resume in another process.
"""

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.context import NodeContext, interrupt
from durable_graph.errors import (
    DurableGraphError,
    GraphMismatch,
    InvalidInput,
    NotSuspended,
    StaleHead,
    ThreadFailed,
    ThreadNotFound,
    UnknownNode,
    UserError,
)
from durable_graph.graph import END, START, Send, StateGraph
from durable_graph.retry import RetryPolicy
from durable_graph.runtime import CompiledGraph, StateSnapshot

__all__ = [
    "END",
    "START",
    "Backend",
    "Checkpoint",
    "CompiledGraph",
    "DurableGraphError",
    "GraphMismatch",
    "InvalidInput",
    "NodeContext",
    "NotSuspended",
    "PayloadRef",
    "RetryPolicy",
    "Send",
    "StaleHead",
    "StateGraph",
    "StateSnapshot",
    "ThreadFailed",
    "ThreadNotFound",
    "UnknownNode",
    "UserError",
    "interrupt",
]
