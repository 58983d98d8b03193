"""`make bench`: every benchmark, one after the other, each printing its own side-by-side table.

Benchmarks are not tests: they print numbers next to a baseline measured in the same run and
assert nothing about time. Run one alone with `.venv/bin/python bench/<name>.py --help`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "approval_throughput.py",
    "storage_growth.py",
    "aws_requests.py",
    "aws_approval.py",
    "long_threads.py",
    "payload_gc.py",
    "postgres_throughput.py",
    "explorer.py",
    "langgraph_saver.py",
]


def main() -> int:
    failures = 0
    for name in ORDER:
        script = HERE / name
        if not script.exists():
            print(f"(missing: {name})")
            failures += 1
            continue
        print(f"\n######## {name}\n", flush=True)
        done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
        failures += done.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
