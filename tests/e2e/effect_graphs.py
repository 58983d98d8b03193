"""A one-node graph whose `ctx.step` effect can be caught in the act, for SIGKILL tests.

Module-level so worker processes import it by path (`tests.e2e.effect_graphs:charge_graph`).

The effect stands for a call to an external receiver that honours idempotency keys: it first
"sends" (appends `ctx.idempotency_key` and the pid to the receiver's log, as the receiver would
log what arrived), then writes a marker file (the test kills the process when it appears) and
sleeps, so a kill lands after the send and before the result is recorded: the worst case.

Environment:
  DG_EFFECT_DIR     folder of the receiver's log (`received`) and the marker (`inside-<pid>`)
  DG_EFFECT_SLEEP   seconds the effect sleeps after its marker (default 0)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.mail import EmailMessage
from durable_graph.runtime import CompiledGraph

DIR_ENV = "DG_EFFECT_DIR"
SLEEP_ENV = "DG_EFFECT_SLEEP"
# Called inside the effect after the send: an in-process test (no real kill, e.g. the moto path)
# raises a `BaseException` from here, which unwinds like a dying process.
SEND_HOOKS: list[Callable[[], None]] = []


class ChargeState(BaseModel):
    receipt: str = ""


def receiver_log() -> Path:
    return Path(os.environ[DIR_ENV]) / "received"


def charge(state: ChargeState, ctx: NodeContext) -> dict[str, Any]:
    folder = Path(os.environ[DIR_ENV])

    def send() -> str:
        with receiver_log().open("a") as handle:  # one short append: the receiver saw it
            handle.write(f"{ctx.idempotency_key} {os.getpid()}\n")
        (folder / f"inside-{os.getpid()}").touch()
        for hook in SEND_HOOKS:
            hook()
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        return f"charged:{ctx.idempotency_key[:8]}"

    return {"receipt": ctx.step("charge", send)}


def in_line(
    state: type[BaseModel], name: str, *nodes: tuple[str, Callable[..., Any]]
) -> CompiledGraph:
    """START -> each of `nodes` in turn -> END, compiled as `tests.e2e.effect_graphs:<name>`
    (the path worker processes import it by)."""
    builder = StateGraph(state)
    for node, action in nodes:
        builder.add_node(node, action)
    for source, target in pairwise([START, *(node for node, _ in nodes), END]):
        builder.add_edge(source, target)
    return builder.compile(name=f"tests.e2e.effect_graphs:{name}")


charge_graph = in_line(ChargeState, "charge_graph", ("charge", charge))


# ---------------------------------------------------------------- a two-step charge, for batches

AFTER_SLEEP_ENV = "DG_AFTER_EFFECT_SLEEP"


class OrderState(BaseModel):
    order: str = ""
    receipt: str = ""


def take_order(state: OrderState, ctx: NodeContext) -> dict[str, Any]:
    return {"order": f"order of {ctx.thread_id}"}


def charge_then_wait(state: OrderState, ctx: NodeContext) -> dict[str, Any]:
    """The effect (logged by the receiver as in `charge`), then, with `DG_AFTER_EFFECT_SLEEP`,
    a sleep after its result is recorded: a kill then lands after the effect, before the step
    that holds its result commits (in a group commit: before the batch commits)."""

    def send() -> str:
        with receiver_log().open("a") as handle:
            handle.write(f"{ctx.idempotency_key} {os.getpid()}\n")
        return f"charged:{ctx.idempotency_key[:8]}"

    receipt = ctx.step("charge", send)
    time.sleep(float(os.environ.get(AFTER_SLEEP_ENV, "0")))
    return {"receipt": receipt}


order_graph = in_line(
    OrderState, "order_graph", ("take_order", take_order), ("charge", charge_then_wait)
)


# ---------------------------------------------------------------- mail through the store's outbox


class MailState(BaseModel):
    message_id: str = ""


def mail(state: MailState, ctx: NodeContext) -> dict[str, Any]:
    """Sends one email through the embedded mailer inside `ctx.step`, then (as `charge`) writes
    a marker and sleeps: a kill lands after the send, before the result is recorded."""
    folder = Path(os.environ[DIR_ENV])

    def send() -> str:
        message = EmailMessage(to=("cfo@example.com",), subject="Pay", body=f"by {os.getpid()}")
        sent = ctx.mailer.send(message, idempotency_key=ctx.idempotency_key)
        (folder / f"inside-{os.getpid()}").touch()
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        return sent

    return {"message_id": ctx.step("mail", send)}


mail_graph = in_line(MailState, "mail_graph", ("mail", mail))
