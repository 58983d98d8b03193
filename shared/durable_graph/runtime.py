"""`CompiledGraph`: the LangGraph-familiar surface (`invoke`, `stream`, `ainvoke`, `astream`,
`update_state`, `get_state`, `get_state_history`) over the engine and a backend.

Where LangGraph's semantics exist they are followed (docs/langgraph-compatibility.md lists
each behaviour, and where it differs on purpose): multi-turn threads, `Command`, several
interrupts resumed in one call, `__interrupt__` in the result, `recursion_limit`,
`checkpoint_id` in a config.

The class is assembled from one module per job, each building on the one before:
`runtime_binding` (backend, engine, workers, working a thread's queue), `runtime_reads`
(snapshots, output, pending interrupts), `runtime_inputs` (what a call commits: input, resume,
update, branch), `runtime_runs` (the run loop, the recursion limit, each step to the stream) and
`runtime_stream` (`stream`, `astream`). `run_config` reads a LangGraph config.
"""

from __future__ import annotations

from durable_graph.run_config import recursion_limit_of, thread_id_of
from durable_graph.runtime_binding import LEASE_ENV
from durable_graph.runtime_inputs import UNSET
from durable_graph.runtime_stream import STREAM_MODES, GraphStreams

__all__ = [
    "LEASE_ENV",
    "STREAM_MODES",
    "UNSET",
    "CompiledGraph",
    "recursion_limit_of",
    "thread_id_of",
]


class CompiledGraph(GraphStreams):
    """A frozen graph bound to a backend; cheap to create, stateless between calls."""
