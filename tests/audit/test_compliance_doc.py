"""`docs/compliance-on-aws.md` stays true: its generator still runs every command with the exit
code it shows, and the committed page shows the same commands (hashes and times differ per run;
regenerate with `PYTHONPATH=shared:. python docs/compliance_on_aws.py`)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMAND = re.compile(r"^\$ .*$", re.MULTILINE)


def test_the_aws_walkthrough_is_generated_from_real_runs() -> None:
    spec = importlib.util.spec_from_file_location(
        "compliance_on_aws", DOCS / "compliance_on_aws.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: str = module.render()  # asserts each command's exit code as it goes
    committed = (DOCS / "compliance-on-aws.md").read_text(encoding="utf-8")
    stack = re.compile(r"aws://dg-stack-\w+")
    assert stack.sub("aws://STACK", "\n".join(COMMAND.findall(rendered))) == stack.sub(
        "aws://STACK", "\n".join(COMMAND.findall(committed))
    )
    assert "FAILED: tx-1001: step 2: hash" in rendered
    assert "ok: 4 checkpoints of tx-1001 (bundle tx-1001.audit.json) verified" in rendered
