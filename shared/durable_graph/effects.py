"""Who may run a `ctx.step` side effect: claims that follow the task's delivery, not the clock.

`ctx.step(name, fn)` writes a claim (a CAS record) before it runs `fn` and the result after. A
process that dies inside `fn` leaves the claim behind. Such a claim belongs to one *delivery* of
the task (the queue's receive count, `TaskDelivery.receive_count`), and a later delivery of the
task takes it over at once. Why that is sound:

- Every queue the engine runs on is FIFO per group (`TransitionMessage.group_id`: the thread, or
  the thread and task when a superstep runs in parallel), and a message is delivered again only
  once its previous lease ended: acknowledged, released (`release` after a transient error) or
  expired (the holder died, or overran its lease and is a zombie). The embedded queue
  (`SqliteQueue`) and the memory queue lease a message until `visible_at`; SQS FIFO keeps it
  invisible for the visibility timeout, and counts receives (`ApproximateReceiveCount`); the
  inline runner of `run` / `invoke` leases through the same queue. So when delivery n+1 of a
  task runs, delivery n no longer holds the task: its claim is orphaned (or a zombie's), and
  waiting for it would only stall the thread.
- A claim written by a *later* delivery than ours (or by an equal one of another worker) means
  we are the zombie: we raise `EffectInProgress` (transient: the message is released, never
  the thread failed) and our late result cannot land (the result is written with a CAS on the
  claim's version).
- A claim of another message of the same task (a re-send whose receive count started again at
  1) is taken over when its lease runs out: `lease_until`, at most the task's lease
  (`effect_lease_seconds`), so by then that delivery's lease has ended too.
- A claim whose `fn` raised is released on the spot (`status: released`): the next run takes it
  without waiting for anything.

Taking over means `fn` may run twice (the dead process may have finished the effect just before
it died; a zombie may still be running it). No engine can close that window for an external
system: the effect and the record of it are not one transaction. The external side stays
exactly-once only through `ctx.idempotency_key`, which is the same for every run of the task:
pass it to the receiver and have the receiver drop a key it has seen.

Why the result is not folded into the step's commit (it would save one write, a request on
DynamoDB): between `fn`'s return and the durable write of its result, nothing stored says the
effect happened, and a claim without a result is, to the next delivery, a run that died inside
`fn`: it takes the claim over and runs `fn` again. That window is the only place an effect runs
twice (`tests/aws/test_effect_crash_points.py` crashes at each point around it). Written on its
own, the result closes the window one request after `fn`. Folded into the commit, it would stay
open over the rest of the node, the head's signature (a KMS request on AWS) and the commit
itself, and a worker whose lease ran out in that time (`test_zombie_worker_whose_lease_expired_
loses_its_late_commit`), or that died there, would have the effect run again: an email sent
twice by SES, which takes no idempotency key. The alternatives do not close it:
- Carrying the claim's condition into the commit's transaction makes a zombie's late commit
  lose, which the step's own condition already does; it cannot stop the second run, which
  started before that commit was tried.
- A claim that records its lease (it does: `delivery`, `lease_until`) lets the next delivery
  see that the claim's lease ran out, not whether `fn` ran: "died inside `fn`" and "finished
  `fn`, then died before the commit" leave the same claim behind. Refusing to run `fn` again
  would stall every thread whose worker died inside an effect, the common case.
- A timer that writes the held result before the lease runs out covers a live zombie only, not
  a worker that dies (a Lambda timeout, out of memory), and a frozen process runs no timer.
So the claim and the result stay two writes on every backend (embedded and PostgreSQL make them
relaxed commits, with no fsync of their own: a killed process loses neither).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from durable_graph.clock import parse_iso
from durable_graph.errors import InvalidInput

log = logging.getLogger("durable_graph.effects")

EFFECT_LEASE_ENV = "DURABLE_GRAPH_EFFECT_LEASE_SECONDS"
DEFAULT_TASK_LEASE_SECONDS = 60.0  # the worker's default visibility timeout

Verdict = Literal["own", "released", "later_delivery", "expired", "busy"]


@dataclass(frozen=True)
class TaskDelivery:
    """The delivery of its task a node runs under: which receive of the message it is, and how
    long a claim it writes stands before another message of the task may take it over."""

    receive_count: int = 1
    claim_seconds: float = DEFAULT_TASK_LEASE_SECONDS


def configured_effect_lease(explicit: float | None = None) -> float | None:
    """The claim lease asked for: `explicit`, else `$DURABLE_GRAPH_EFFECT_LEASE_SECONDS`, else
    None (the task's lease). A bad value is refused here, when the engine is built, not when a
    node first claims an effect."""
    if explicit is None:
        raw = os.environ.get(EFFECT_LEASE_ENV, "").strip()
        if not raw:
            return None
        try:
            explicit = float(raw)
        except ValueError:
            explicit = math.nan
    if not math.isfinite(explicit) or explicit <= 0:
        raise InvalidInput(
            f"the effect claim lease must be a positive number of seconds (got {explicit!r}; "
            f"set by {EFFECT_LEASE_ENV} or effect_lease_seconds)",
            field="effect_lease_seconds",
        )
    return explicit


def claim_seconds(task_lease: float, configured: float | None) -> float:
    """A claim never outlives the task's lease: past it, the queue hands the task to someone
    else, who must not wait longer for the claim than for the task itself."""
    return task_lease if configured is None else min(configured, task_lease)


def judge(claim: Mapping[str, Any], worker: str, delivery: TaskDelivery, now: datetime) -> Verdict:
    """What a run of the task may do about a claim it found (see the module docstring)."""
    if claim.get("status") == "released":
        return "released"
    by = claim.get("delivery")
    if claim.get("owner") == worker and by in (None, delivery.receive_count):
        return "own"  # a retry of the node inside this delivery (or a claim from before these)
    if isinstance(by, int) and by < delivery.receive_count:
        return "later_delivery"
    if parse_iso(str(claim["lease_until"])) <= now:
        return "expired"
    return "busy"


class TakeoverCounter:
    """Effect claims taken over in this process; a metrics hook (the Lambda handler) publishes
    what accumulated since it last looked, a long-running worker can read `total`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self._unreported = 0

    def add(self) -> None:
        with self._lock:
            self.total += 1
            self._unreported += 1

    def take_unreported(self) -> int:
        with self._lock:
            count, self._unreported = self._unreported, 0
            return count


TAKEOVERS = TakeoverCounter()


def note_takeover(
    name: str, task_id: str, claim: Mapping[str, Any], delivery: TaskDelivery, why: Verdict
) -> None:
    """One log line and one count per takeover: a crashed effect is visible, not silent."""
    TAKEOVERS.add()
    log.warning(
        "effect %r of task %s: taking over the claim of %s (delivery %s, lease until %s) as "
        "delivery %d: %s; it may run again, the idempotency key keeps the receiver's side once",
        name,
        task_id,
        claim.get("owner"),
        claim.get("delivery", "?"),
        claim.get("lease_until"),
        delivery.receive_count,
        "a later delivery of the task" if why == "later_delivery" else "its lease ran out",
    )


__all__ = [
    "DEFAULT_TASK_LEASE_SECONDS",
    "EFFECT_LEASE_ENV",
    "TAKEOVERS",
    "TakeoverCounter",
    "TaskDelivery",
    "Verdict",
    "claim_seconds",
    "configured_effect_lease",
    "judge",
    "note_takeover",
]
