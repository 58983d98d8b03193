"""`docs/erasure-and-retention.md` stays true: its generator still runs every command of the
page's generated regions with the exit code it shows, the committed page shows the same
commands, and nothing outside those regions changes (hashes, keys and times differ per run;
regenerate with `PYTHONPATH=shared:. python docs/erasure_and_retention.py`)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMAND = re.compile(r"^\$ .*$", re.MULTILINE)
REGION = re.compile(r"<!-- generated: (\w+) .*?<!-- end generated: \1 -->", re.DOTALL)


def test_the_erasure_walkthrough_is_generated_from_real_runs() -> None:
    spec = importlib.util.spec_from_file_location(
        "erasure_and_retention", DOCS / "erasure_and_retention.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (DOCS / "erasure-and-retention.md").read_text(encoding="utf-8")

    rendered: str = module.render(committed)

    assert COMMAND.findall(rendered) == COMMAND.findall(committed)
    assert REGION.sub("", rendered) == REGION.sub("", committed)
    assert [m.group(1) for m in REGION.finditer(committed)] == ["encrypted", "walkthrough"]
    assert "FAILED: tx-1001: step 0: erasure" in rendered
    assert "data key destroyed" in rendered
