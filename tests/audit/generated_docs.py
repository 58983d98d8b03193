"""What the tests of the generated doc pages share: the docs folder, a page's commands, and
its generator (a script in `docs/`, not in a package) imported from its file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMAND = re.compile(r"^\$ .*$", re.MULTILINE)


def generator(name: str) -> ModuleType:
    """`docs/NAME.py`, imported (running it as a script would rewrite its page)."""
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
