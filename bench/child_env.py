"""The environment of a benchmark's child process (a timed run, a strace or callgrind pass),
which imports durable-graph either from this checkout or from `source`, another one
(`--previous`): one rule for every benchmark that starts such children."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # this checkout: `bench`, `examples`, `shared`


def child_env(source: Path | None) -> dict[str, str]:
    """This process's environment, with a `PYTHONPATH` for the child. With `source`,
    durable-graph and `examples` come from it, and this checkout's root after it, for the
    `bench` modules `source` lacks (e.g. `approval_waves`). Without, this checkout's root
    comes first, so the child finds `bench` and `examples` however the parent was started
    (pytest puts the root on its own path only)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source / "shared"), str(source), str(ROOT)])
    else:
        inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *inherited])
    return env
