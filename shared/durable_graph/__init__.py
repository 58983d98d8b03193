"""durable-graph: durable, auditable execution for AI agent graphs.

Every step is committed as an immutable, hash-chained checkpoint before the next is scheduled;
any process may die; a thread can suspend for days and resume in another process.
"""

from durable_graph.approval_rule import ApprovalRule
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.commands import Command, Interrupt
from durable_graph.context import NodeContext, get_config, get_stream_writer, interrupt
from durable_graph.errors import (
    DurableGraphError,
    GraphMismatch,
    GraphRecursionError,
    InvalidInput,
    NotSuspended,
    StaleHead,
    ThreadFailed,
    ThreadNotFound,
    TurnRefused,
    UnknownNode,
    UserError,
)
from durable_graph.graph import END, START, Send, StateGraph
from durable_graph.messages import REMOVE_ALL_MESSAGES, MessagesState, add_messages
from durable_graph.retry import RetryPolicy
from durable_graph.runtime import CompiledGraph
from durable_graph.views import StateSnapshot

__all__ = [
    "END",
    "REMOVE_ALL_MESSAGES",
    "START",
    "ApprovalRule",
    "Backend",
    "Checkpoint",
    "Command",
    "CompiledGraph",
    "DurableGraphError",
    "GraphMismatch",
    "GraphRecursionError",
    "Interrupt",
    "InvalidInput",
    "MessagesState",
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
    "TurnRefused",
    "UnknownNode",
    "UserError",
    "add_messages",
    "get_config",
    "get_stream_writer",
    "interrupt",
]
