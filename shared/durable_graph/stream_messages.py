"""`stream_mode="messages"`'s LLM tokens: a LangChain callback handler, as LangGraph's
`StreamMessagesHandler`, given to the chat models a node calls while a caller streams
messages. Needs `langchain-core` (the `langchain` extra); without it `llm_tokens` is a no-op
and the messages mode carries the messages nodes write.

A chat model called inside a node (`model.invoke(...)`, `model.stream(...)`, with or without
the node's `config`) finds the handler through LangChain's context variable for a child
run's config, as it would inside a LangGraph node. Because the handler is a streaming one,
`invoke` streams its tokens: each chunk reaches the caller as `(AIMessageChunk, metadata)`.
The message the model finally returns is not sent again (its id was seen), nor when the
node writes it to the state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["HAS_CALLBACKS", "llm_tokens"]

Emit = Callable[[Any, dict[str, Any]], None]  # (message, metadata)

_HandlerBase: Any = object  # LangChain's classes when it is installed (typed loosely: it may
_StreamingBase: Any = object  # be absent where this is type-checked)

try:  # the optional extra
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
    from langchain_core.runnables.config import var_child_runnable_config

    _HandlerBase = BaseCallbackHandler
    HAS_CALLBACKS = True
except ImportError:  # pragma: no cover - exercised where langchain-core is absent
    HAS_CALLBACKS = False

try:  # what makes a chat model's invoke() stream its tokens to the handler
    from langchain_core.tracers._streaming import _StreamingCallbackHandler

    _StreamingBase = _StreamingCallbackHandler
except ImportError:  # pragma: no cover - without it, only stream() gives tokens
    pass


if HAS_CALLBACKS:

    class _TokenHandler(_HandlerBase, _StreamingBase):  # type: ignore[misc]
        """Sends a chat model's tokens (and its answer, when it did not stream) to `emit`;
        `seen` holds the ids of messages already sent, shared with the task's stream."""

        run_inline = True

        def __init__(self, emit: Emit, metadata: dict[str, Any], seen: set[str]) -> None:
            self.emit = emit
            self.node_metadata = metadata
            self.seen = seen
            self.runs: dict[Any, dict[str, Any]] = {}

        def tap_output_iter(self, run_id: Any, output: Iterator[Any]) -> Iterator[Any]:
            return output

        def tap_output_aiter(self, run_id: Any, output: Any) -> Any:
            return output

        def on_chat_model_start(
            self,
            serialized: dict[str, Any],
            messages: list[list[Any]],
            *,
            run_id: Any,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if tags and "nostream" in tags:  # LangGraph's TAG_NOSTREAM
                return
            self.runs[run_id] = {**self.node_metadata, **(metadata or {})}

        def on_llm_new_token(
            self, token: str, *, chunk: Any = None, run_id: Any, **kwargs: Any
        ) -> None:
            metadata = self.runs.get(run_id)
            if metadata is not None and isinstance(chunk, ChatGenerationChunk):
                self._send(chunk.message, metadata, dedupe=False)

        def on_llm_end(self, response: LLMResult, *, run_id: Any, **kwargs: Any) -> None:
            metadata = self.runs.pop(run_id, None)
            if metadata is not None and response.generations and response.generations[0]:
                generation = response.generations[0][0]
                if isinstance(generation, ChatGeneration):
                    self._send(generation.message, metadata, dedupe=True)

        def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
            self.runs.pop(run_id, None)

        def _send(self, message: Any, metadata: dict[str, Any], *, dedupe: bool) -> None:
            if dedupe and message.id in self.seen:
                return
            if message.id is not None:
                self.seen.add(message.id)
            self.emit(message, metadata)


@contextmanager
def llm_tokens(emit: Emit, metadata: dict[str, Any], seen: set[str]) -> Iterator[None]:
    """While it is open, chat models called in this context stream their tokens to `emit`."""
    if not HAS_CALLBACKS:
        yield
        return
    handler = _TokenHandler(emit, metadata, seen)
    parent: dict[str, Any] = dict(var_child_runnable_config.get() or {})
    given = parent.get("callbacks")
    callbacks = [*given, handler] if isinstance(given, list) else [handler]
    config: Any = {**parent, "callbacks": callbacks, "metadata": dict(metadata)}
    token = var_child_runnable_config.set(config)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)
