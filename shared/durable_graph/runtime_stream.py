"""`stream` and `astream`: a run on a helper thread whose chunks (LangGraph's stream modes) the
caller iterates as they come."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from durable_graph.errors import InvalidInput
from durable_graph.run_config import thread_id_of
from durable_graph.runs import RunScope
from durable_graph.runtime_runs import GraphRuns

STREAM_MODES = ("values", "updates", "custom", "messages", "checkpoints", "tasks", "debug")


class GraphStreams(GraphRuns):
    """Streaming a run."""

    def stream(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "values",
        subgraphs: bool = False,
        thread_id: str | None = None,
    ) -> Iterator[Any]:
        """Run like `invoke`, yielding as it goes (LangGraph's stream modes):

        - `"values"`: the whole state after each step (the input step first);
        - `"updates"`: `{node: update}` as each node finishes;
        - `"custom"`: what nodes send through `writer(...)` / `get_stream_writer()`;
        - `"messages"`: `(message, metadata)` for chat messages: a chat model's tokens as a
          node calls it (with `langchain-core`), and the messages nodes write;
        - `"checkpoints"`: each committed step as LangGraph's checkpoint event (config,
          parent_config, values, metadata, next, tasks); `"tasks"`: each task as it starts
          (id, name, input, triggers) and ends (result, error, interrupts); `"debug"`: both,
          wrapped as `{"type", "step", "timestamp", "payload"}`.

        A list of modes yields `(mode, chunk)` pairs; `subgraphs=True` also yields the chunks
        of subgraphs, each as `(namespace, chunk)` (or `(namespace, mode, chunk)`), the
        namespace `()` for this graph and `("node:task id", ...)` inside a subgraph. When the
        thread suspends in a node, the last chunks are `{"__interrupt__": [Interrupt, ...]}`
        ("updates") and the state with `"__interrupt__"` ("values"). The run happens on a
        helper thread; leaving the loop early does not stop it (the thread is durable: it runs
        to its next stop, like a detached run)."""
        tid = thread_id_of(config, thread_id)
        modes = _modes(stream_mode)
        events: queue.Queue[tuple[tuple[str, ...], str, Any]] = queue.Queue()
        done, failed = "__done__", "__failed__"

        def sink(namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
            events.put((namespace, mode, chunk))

        scope = RunScope(
            config=dict(config or {}), sink=sink, modes=frozenset(modes), subgraphs=subgraphs
        )

        def work() -> None:
            try:
                self._run(input, config, tid, scope, None)
                events.put(((), done, None))
            except BaseException as exc:  # handed to the caller's thread, raised there
                events.put(((), failed, exc))

        runner = threading.Thread(target=work, name=f"stream:{tid}", daemon=True)
        runner.start()
        while True:
            namespace, mode, chunk = events.get()
            if mode == done:
                break
            if mode == failed:
                raise chunk
            shown = chunk if len(modes) == 1 else (mode, chunk)
            if subgraphs:
                yield (namespace, shown) if len(modes) == 1 else (namespace, mode, chunk)
            else:
                yield shown
        runner.join()

    async def astream(
        self,
        input: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "values",
        subgraphs: bool = False,
        thread_id: str | None = None,
    ) -> AsyncIterator[Any]:
        """`stream` for async callers: each chunk is awaited off the event loop."""
        chunks = self.stream(
            input, config, stream_mode=stream_mode, subgraphs=subgraphs, thread_id=thread_id
        )
        end = object()
        while True:
            chunk = await asyncio.to_thread(next, chunks, end)
            if chunk is end:
                return
            yield chunk


def _modes(stream_mode: str | Sequence[str]) -> list[str]:
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown or not modes:
        raise InvalidInput(
            f"stream_mode {unknown or modes!r}: supported modes are {', '.join(STREAM_MODES)}",
            field="stream_mode",
        )
    return list(dict.fromkeys(modes))
