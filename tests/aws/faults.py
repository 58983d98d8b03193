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


# A step's checkpoint is written by a PutItem alone, or in a TransactWriteItems with its
# companions (thread head, signature, approval link; `DynamoDBCheckpointStore.append_with`);
# the thread head by an UpdateItem alone or in one of those transactions. `dynamodb.write` in a
# `Fault` event or a `CallLog` means all three operations.
WRITE = "dynamodb.write"
DYNAMODB_WRITES = ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.TransactWriteItems")


def sort_keys(params: dict[str, Any]) -> list[str]:
    """The sort keys a write names: a PutItem's `Item`, an UpdateItem's `Key`, or those of
    each action of a transaction."""
    bodies = [params]
    if "TransactItems" in params:
        bodies = [body for action in params["TransactItems"] for body in action.values()]
    keys = []
    for body in bodies:
        item = body.get("Item") or body.get("Key") or {}
        keys.append(str(item.get("sk", {}).get("S", "")))
    return keys


def checkpoint_put(params: dict[str, Any]) -> bool:
    """A write of a checkpoint (alone, or in a transaction with its companions)."""
    return any(k.startswith("cp#") for k in sort_keys(params))


def thread_put(params: dict[str, Any]) -> bool:
    """A write of the thread record (`advance_thread`: alone, or with a checkpoint)."""
    return "thread" in sort_keys(params)


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
        when, operation = self.event.split(".", 1)
        for one in DYNAMODB_WRITES if operation == WRITE else (operation,):
            client.meta.events.register(f"before-parameter-build.{one}", _stash)
            client.meta.events.register(f"{when}.{one}", self._maybe_raise)

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

    def install(self, client: Any, operations: tuple[str, ...] = DYNAMODB_WRITES) -> None:
        """Log these operations. Install before any `Fault`: botocore calls the handlers of one
        event in registration order, so the log sees a landed write before a fault hides it."""
        for operation in operations:
            client.meta.events.register(f"before-parameter-build.{operation}", _stash)
            client.meta.events.register(f"after-call.{operation}", self._record)

    def _record(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, int(http_response.status_code), context.get(PARAMS, {})))

    def landed(
        self, operation: str | None = None, matches: Callable[[dict[str, Any]], bool] = always
    ) -> int:
        """Calls of `operation` (any, when None) that succeeded and match."""
        return sum(
            1
            for name, status, params in self.calls
            if operation in (None, name) and status < 300 and matches(params)
        )
