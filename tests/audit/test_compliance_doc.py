"""`docs/compliance-on-aws.md` stays true: its generator still runs every command with the exit
code it shows, and the committed page shows the same commands (hashes and times differ per run;
regenerate with `PYTHONPATH=shared:. python docs/compliance_on_aws.py`)."""

from __future__ import annotations

import re

from tests.audit.generated_docs import COMMAND, DOCS, generator


def test_the_aws_walkthrough_is_generated_from_real_runs() -> None:
    # render() asserts each command's exit code as it goes
    rendered: str = generator("compliance_on_aws").render()
    committed = (DOCS / "compliance-on-aws.md").read_text(encoding="utf-8")
    stack = re.compile(r"aws://dg-stack-\w+")
    assert stack.sub("aws://STACK", "\n".join(COMMAND.findall(rendered))) == stack.sub(
        "aws://STACK", "\n".join(COMMAND.findall(committed))
    )
    assert "FAILED: tx-1001: step 2: hash" in rendered
    assert "ok: 4 checkpoints of tx-1001 (bundle tx-1001.audit.json) verified" in rendered
