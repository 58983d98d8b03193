"""A step's salts are drawn in one read of the random source (`salted_parts.new_salts`): each
must still be what `docs/record-format.md` says a salt is (16 random bytes as 32 lowercase hex
characters), and no two alike."""

from __future__ import annotations

import re
from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.salted_parts import new_salts
from examples.email_approval import graph as email_graph

SALT = re.compile(r"[0-9a-f]{32}")


def test_salts_cut_from_one_draw_are_each_a_whole_salt_and_all_differ() -> None:
    """Given draws of 0, 1 and 50 salts, then each draw has as many, each 32 lowercase hex
    characters, and none repeats within or across the draws."""
    draws = [new_salts(count) for count in (0, 1, 50)]
    assert [len(draw) for draw in draws] == [0, 1, 50]
    every = [salt for draw in draws for salt in draw]
    assert all(SALT.fullmatch(salt) for salt in every)
    assert len(set(every)) == len(every)


def test_the_changes_and_io_records_of_a_step_each_get_their_own_salt(tmp_path: Path) -> None:
    """Given the seed flow's first record (every field set) and its draft step (changes and an
    io record), then every change and io record of a step has a salt of its own."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    for step in (0, 1):
        record = app.get_state("t-1", step=step).checkpoint
        salts = [change.s for change in record.changes.values()]
        salts += [io.s for io in record.io]
        assert len(salts) > 1 and all(s is not None and SALT.fullmatch(s) for s in salts)
        assert len(set(salts)) == len(salts), step
    backend.close()
