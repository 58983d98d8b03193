"""The request digest of a recorded call (`ctx.record`, `request_digests.py`), on every backend,
clear and encrypted: it is salted by the io record's salt (keyed by the thread's data key when
encryption is on), so no stored byte or bundle holds the plain sha256 of a request (a short
one, an account number, could be confirmed by guessing), and once the io part is erased nothing
left in the store lets one test a guess; `replay` still finds each call's recorded answer, and
a retried node records its calls once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, NodeContext, RetryPolicy, StateGraph
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.canonical import canonical_bytes, sha256_hex
from durable_graph.checkpoint import IoRecord
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.request_digests import KEYED, SALTED
from durable_graph.salted_parts import part_digest
from durable_graph.timetravel import replay
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import ALICE, Encrypted, holds
from tests.conformance.test_erasure_parts import stored

ACCOUNTS = ("ACCT-4471", "ACCT-4472")  # short: guessable from a plain digest
CALLS: dict[str, int] = {}  # how often each account was looked up (the external side)
FAILS = {"left": 0}  # attempts still to fail after their calls


class Case(BaseModel):
    balances: list[str] = []
    answer: str = ""


def look(state: Case, ctx: NodeContext) -> dict[str, Any]:
    """Looks two accounts up; the first attempt fails after its calls (a retry repeats them)."""

    def lookup(account: str) -> str:
        CALLS[account] = CALLS.get(account, 0) + 1
        return f"balance of {account}: 12.00"

    found = [ctx.record("account", lookup, account) for account in ACCOUNTS]
    if FAILS["left"]:
        FAILS["left"] -= 1
        raise ConnectionError("this attempt fails after its calls")
    return {"balances": found}


def ask(state: Case, ctx: NodeContext) -> dict[str, Any]:
    return {"answer": str(ctx.interrupt({"confirm": len(state.balances)}))}


def _graph() -> Any:
    builder = StateGraph(Case)
    builder.add_node("look", look, retry=RetryPolicy(max_attempts=2, initial_interval=0.0))
    builder.add_node("ask", ask)
    builder.add_edge(START, "look")
    builder.add_edge("look", "ask")
    builder.add_edge("ask", END)
    return builder.compile(name="tests.conformance.test_request_digests:graph")


graph = _graph()


def plain_digests() -> list[str]:
    """What a guesser computes: each request's plain sha256, and its first 16 hex (the call
    name's suffix in records written before)."""
    full = [sha256_hex(canonical_bytes(account)) for account in ACCOUNTS]
    return full + [d[:16] for d in full]


def calls_of(backend: Backend, thread_id: str) -> list[IoRecord]:
    return [io for row in backend.checkpoints.ledger(thread_id) for io in row.io]


def run_case(backend: Backend, clock: ManualClock, thread_id: str) -> Any:
    CALLS.clear()
    FAILS["left"] = 1
    app = graph.with_backend(backend, clock=clock)
    app.invoke({}, thread_id=thread_id)
    assert dict.fromkeys(ACCOUNTS, 1) == CALLS, "a retry gets the first attempt's answers"
    calls = calls_of(backend, thread_id)
    assert len(calls) == 2 and len({io.name for io in calls}) == 2
    return app


def test_requests_are_salted_replayed_and_unguessable_after_erasure(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a node that looks up two short account numbers through `ctx.record` (and fails
    once after the calls, so a retry makes them again)
    Then each account is looked up once, each io record names its call by a salted digest
    (`$d:`, its salt the io record's), no stored byte holds a request's plain sha256, and
    `replay` feeds each call its own answer
    When the io part is erased
    Then the salts are gone with the answers, the thread and a bundle verify, and neither the
    store nor the bundle holds a plain digest or lets a guess be confirmed."""
    app = run_case(backend, clock, "r1")
    calls = calls_of(backend, "r1")
    for io, account in zip(calls, ACCOUNTS, strict=True):
        assert io.request_sha256 is not None and io.request_sha256.startswith(SALTED)
        assert io.s is not None and io.request_sha256 == SALTED + part_digest(io.s, account)
        assert io.name == f"account#{io.request_sha256[3:19]}"
    assert not any(holds(stored(backend), d) for d in plain_digests())
    replayed = replay(app, "r1", 1)
    assert replayed.verdict == "reproduced", replayed.reason
    assert [(t.recorded_inputs, t.used_inputs) for t in replayed.tasks] == [(2, 2)]

    record = erase(backend, "r1", parts=["io"], reason="GDPR #151", actor=ALICE)

    assert record is not None and record.io
    erased = calls_of(backend, "r1")
    assert all(io.s is None and io.response is None for io in erased)
    assert [io.request_sha256 for io in erased] == [io.request_sha256 for io in calls]
    data = stored(backend)
    assert not any(holds(data, d) for d in plain_digests())
    assert not any(holds(data, io.s or "") for io in calls), "no salt left to test a guess"
    report = verify_thread(backend, "r1")
    assert report.ok, report.reason
    bundle = build_bundle(backend, "r1")
    text = bundle.model_dump_json()
    assert not any(d in text for d in plain_digests())
    assert not any(io.s is not None and io.s in text for io in calls)
    assert verify_bundle(bundle).ok
    assert replay(app, "r1", 1).verdict == "not_reproducible"


def test_encrypted_requests_are_keyed_by_the_data_key(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted store, where an io record's salt stays in the clear beside its sealed
    answer (and after the key is destroyed)
    Then each request digest is keyed by the thread's data key (`$k:`): the stored salt alone
    does not confirm a guessed request, no stored byte holds a plain digest, and `replay`
    (which has the key) feeds each call its answer
    When the whole thread is erased (its key destroyed)
    Then the thread verifies, and the salts left in the store still confirm no guess."""
    backend = encrypted.backend
    app = run_case(backend, clock, "r2")
    calls = calls_of(backend, "r2")
    for io, account in zip(calls, ACCOUNTS, strict=True):
        assert io.request_sha256 is not None and io.request_sha256.startswith(KEYED)
        assert io.s is not None and io.request_sha256[3:] != part_digest(io.s, account)
    assert not any(holds(encrypted.stored(), d) for d in plain_digests())
    replayed = replay(app, "r2", 1)
    assert replayed.verdict == "reproduced", replayed.reason

    record = erase(backend, "r2", reason="GDPR #152", actor=ALICE)

    assert record is not None and record.data_key
    assert verify_thread(backend, "r2").ok
    for io, account in zip(calls_of(backend, "r2"), ACCOUNTS, strict=True):
        assert io.request_sha256 is not None
        guesses = {part_digest(salt, account) for salt in (io.s, *(c.s for c in calls)) if salt}
        assert io.request_sha256[3:] not in guesses
    assert not any(holds(encrypted.stored(), d) for d in plain_digests())
    assert replay(app, "r2", 1).verdict == "not_reproducible"
