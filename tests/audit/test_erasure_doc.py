"""`docs/erasure-and-retention.md` stays true: its generator still runs every command of the
page's generated regions with the exit code it shows, the committed page shows the same
commands, and nothing outside those regions changes (hashes, keys and times differ per run;
regenerate with `PYTHONPATH=shared:. python docs/erasure_and_retention.py`)."""

from __future__ import annotations

import re

from tests.audit.generated_docs import COMMAND, DOCS, generator

# A command may name a time relative to the day the page was made (`retention run --as-of`).
DAY = re.compile(r"\d{4}-\d{2}-\d{2}T")
REGION = re.compile(r"<!-- generated: (\w+) .*?<!-- end generated: \1 -->", re.DOTALL)


def test_the_erasure_walkthrough_is_generated_from_real_runs() -> None:
    module = generator("erasure_and_retention")
    committed = (DOCS / "erasure-and-retention.md").read_text(encoding="utf-8")

    rendered: str = module.render(committed)

    assert commands(rendered) == commands(committed)
    assert REGION.sub("", rendered) == REGION.sub("", committed)
    assert [m.group(1) for m in REGION.finditer(committed)] == ["encrypted", "walkthrough"]
    assert "FAILED: tx-1001: step 0: erasure" in rendered
    assert "data key destroyed" in rendered


def commands(page: str) -> list[str]:
    """The page's commands, with the dates in them masked."""
    return [DAY.sub("<day>T", command) for command in COMMAND.findall(page)]
