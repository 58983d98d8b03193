"""Fault injection around the real AWS calls, with botocore's event hooks.

Nothing of ours is replaced: the hook raises at a chosen point of a real request — before it is
sent (`before-call`), or after its answer arrived (`after-call`: the write landed) — exactly as a
crashed process or a dropped connection would. `InvocationCrashed` is a `BaseException`, so it
unwinds through every `except Exception` like a dying Lambda runtime; `ConnectionClosedError`
is what botocore raises when the connection drops after the request was sent (an ambiguous
write).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ConnectionClosedError

from durable_graph.backends.aws.local_poller import InvocationCrashed

PARAMS = "dg_params"


def _stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep the API parameters in the request context, where later events can read them."""
    context[PARAMS] = dict(params)


def crash() -> BaseException:
    return InvocationCrashed("simulated crash")


def connection_dropped() -> BaseException:
    return ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


def sort_key(params: dict[str, Any]) -> str:
    """The sort key a PutItem (`Item`) or UpdateItem (`Key`) writes."""
    item = params.get("Item") or params.get("Key") or {}
    return str(item.get("sk", {}).get("S", ""))


def checkpoint_put(params: dict[str, Any]) -> bool:
    return sort_key(params).startswith("cp#")


def thread_put(params: dict[str, Any]) -> bool:
    """The thread record's write (an UpdateItem: `advance_thread`)."""
    return sort_key(params) == "thread"


def always(params: dict[str, Any]) -> bool:
    return True


@dataclass
class Fault:
    """Raise `error()` at the `occurrence`-th call matching `matches`, once.

    `event` is `before-call` (the request never reaches AWS) or `after-call` (it did, and its
    answer is lost), with the service and operation: `after-call.dynamodb.PutItem`.
    """

    event: str
    matches: Callable[[dict[str, Any]], bool] = always
    error: Callable[[], BaseException] = crash
    occurrence: int = 1
    seen: int = 0
    fired: bool = False

    def install(self, client: Any) -> None:
        operation = ".".join(self.event.split(".")[1:])
        client.meta.events.register(f"before-parameter-build.{operation}", _stash)
        client.meta.events.register(self.event, self._maybe_raise)

    def _maybe_raise(self, context: dict[str, Any], **_: Any) -> None:
        if self.fired or not self.matches(context.get(PARAMS, {})):
            return
        self.seen += 1
        if self.seen == self.occurrence:
            self.fired = True
            raise self.error()


@dataclass
class CallLog:
    """Every call a client made: (operation, HTTP status, API params)."""

    calls: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def install(self, client: Any, operations: tuple[str, ...] = ("dynamodb.PutItem",)) -> None:
        """Log these operations. Install before any `Fault`: botocore calls the handlers of one
        event in registration order, so the log sees a landed write before a fault hides it."""
        for operation in operations:
            client.meta.events.register(f"before-parameter-build.{operation}", _stash)
            client.meta.events.register(f"after-call.{operation}", self._record)

    def _record(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, int(http_response.status_code), context.get(PARAMS, {})))

    def landed(self, operation: str, matches: Callable[[dict[str, Any]], bool] = always) -> int:
        return sum(
            1
            for name, status, params in self.calls
            if name == operation and status < 300 and matches(params)
        )
