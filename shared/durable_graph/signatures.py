"""What a node or a router asks for, read from its signature once, when the graph is built.

A node takes the state first, then optionally:
- a second positional parameter: the `NodeContext` (`ctx.step`, `ctx.record`, `ctx.interrupt`),
  unless it is named `config` or annotated `RunnableConfig`;
- `config`: LangGraph's `RunnableConfig` shape, a dict (`configurable`, `metadata`,
  `recursion_limit`);
- `writer`: a callable that sends a chunk to `stream(..., stream_mode="custom")`.

A router takes the state, and optionally `config`. Anything else (a required parameter we
would not know what to pass to) is refused at `compile()`, naming the function, instead of
failing at run time after its node ran.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["CallShape", "node_shape", "router_shape", "run_sync"]
T = TypeVar("T")

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_NODE_FORMS = "(state), (state, ctx), (state, config) and the keywords config= and writer="
_ROUTER_FORMS = "(state) or (state, config)"


@dataclass(frozen=True)
class CallShape:
    """How to call one function: which arguments it takes, and how (positionally or by name)."""

    state: bool = True
    ctx: bool = False
    config: str | None = None  # "positional" or "keyword"
    writer: bool = False
    is_async: bool = False

    def call(self, fn: Callable[..., Any], state: Any, ctx: Any, config: Any, writer: Any) -> Any:
        args: list[Any] = [state] if self.state else []
        kwargs: dict[str, Any] = {}
        if self.ctx:
            args.append(ctx)
        if self.config == "positional":
            args.append(config)
        elif self.config == "keyword":
            kwargs["config"] = config
        if self.writer:
            kwargs["writer"] = writer
        return fn(*args, **kwargs)


def _is_config(param: inspect.Parameter) -> bool:
    return param.name == "config" or "RunnableConfig" in str(param.annotation)


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: called with the state
        return None


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _is_async(fn: Callable[..., Any]) -> bool:
    target = getattr(fn, "__call__", None) if not inspect.isroutine(fn) else fn  # noqa: B004
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target)


def node_shape(fn: Callable[..., Any], *, node: str) -> CallShape:
    """The call shape of a node function; `TypeError` naming the node if it asks for more."""
    params = _parameters(fn)
    if params is None:
        return CallShape(is_async=_is_async(fn))
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return CallShape(ctx=True, is_async=_is_async(fn))
    positional = [p for p in params if p.kind in _POSITIONAL]
    shape: dict[str, Any] = {"state": bool(positional), "is_async": _is_async(fn)}
    used = set()
    if positional:
        used.add(positional[0].name)
    if len(positional) >= 2:
        second = positional[1]
        used.add(second.name)
        if _is_config(second):
            shape["config"] = "positional"
        elif second.name == "writer":
            shape["writer"] = True
        else:
            shape["ctx"] = True
    for param in params:
        if param.name in used or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if param.name == "config" and "config" not in shape:
            shape["config"] = "keyword"
            used.add(param.name)
        elif param.name == "writer" and not shape.get("writer"):
            shape["writer"] = True
            used.add(param.name)
    missing = [
        p.name
        for p in params
        if p.name not in used
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    if missing:
        raise TypeError(
            f"node {node!r} ({_describe(fn)}) has parameters {missing} that nothing passes: a "
            f"node takes {_NODE_FORMS}"
        )
    return CallShape(**shape)


def router_shape(fn: Callable[..., Any], *, source: str) -> CallShape:
    """The call shape of a router; `TypeError` naming it and its node if it is not
    `(state)` or `(state, config)` (a router decides from the state alone: it has no
    `NodeContext`, since a replay recomputes its decision)."""
    params = _parameters(fn)
    if params is None:
        return CallShape()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return CallShape()
    positional = [p for p in params if p.kind in _POSITIONAL]
    required = [
        p
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    where = f"router {_describe(fn)} of {source!r}"
    if _is_async(fn):
        raise TypeError(f"{where} is async: a router is a plain function of the state")
    if not positional:
        raise TypeError(f"{where} takes no state argument: a router takes {_ROUTER_FORMS}")
    extra = [p for p in required if p is not positional[0]]
    if any(not _is_config(p) for p in extra) or len(extra) > 1:
        names = ", ".join(p.name for p in required)
        raise TypeError(
            f"{where} takes ({names}): a router takes {_ROUTER_FORMS}; it gets no NodeContext "
            "(a router only reads the state, and replay recomputes its decision)"
        )
    config_param = next((p for p in params[1:] if _is_config(p)), None)
    if config_param is None:
        return CallShape()
    kind = "positional" if config_param in positional else "keyword"
    return CallShape(config=kind)


def run_sync(awaitable: Awaitable[T]) -> T:
    """The result of an `async def` node, run to completion here: in a fresh event loop on
    this thread, or on a helper thread (with this thread's context, so `interrupt()` and
    `ctx` work) when this thread already runs a loop."""

    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, main()).result()
