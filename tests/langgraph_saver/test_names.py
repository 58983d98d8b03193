"""Ledger ids of LangGraph threads: the root namespace keeps the thread's id; any id maps to a
valid, distinct ledger id and back."""

from __future__ import annotations

import pytest

from durable_graph.errors import InvalidInput
from durable_graph.langgraph_saver.names import LedgerName


@pytest.mark.parametrize(
    ("name", "ledger_id"),
    [
        (LedgerName("t1"), "t1"),
        (LedgerName("t1", "child:abc"), "t1@child:abc"),
        (LedgerName("t1", "", 2), "t1~2"),
        (LedgerName("user/7#a@b~c%", "p:1|q:2", 1), "user%2F7%23a%40b%7Ec%25~1@p:1|q:2"),
        (LedgerName("a@b", ""), "a%40b"),
        (LedgerName("a", "b"), "a@b"),
    ],
)
def test_ledger_ids_round_trip(name: LedgerName, ledger_id: str) -> None:
    assert name.ledger_id == ledger_id
    assert LedgerName.parse(ledger_id) == name


def test_a_thread_id_too_long_for_the_ledger_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="over 200 characters"):
        _ = LedgerName("t" * 150, "n" * 60).ledger_id
