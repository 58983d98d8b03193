"""Deciding a step under an approval rule with the CLI, as real processes over SQLite: the CLI
decides as the process's OS account (never a self-declared `--actor`), counts once, and the
step that completes the rule commits every approver, which `show` and `verify` print."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys

from tests.e2e.conftest import REPO, Cli

FOUR_EYES = "examples.four_eyes:graph"
REQUEST = '{"requested_by": "alice@example.com", "amount_eur": 25000}'
DECIDE = ("resume", "p1", "--values", '{"approved": true}', "--as-node", "approve_payment")
# A second person, deciding from Python in a process of its own (it vouches for the name).
PYTHON_APPROVER = (
    "import sys\nfrom pathlib import Path\n"
    "from durable_graph.backends.local import local_backend\n"
    "from examples.four_eyes import graph\n"
    "backend = local_backend(Path(sys.argv[1]))\n"
    "graph.with_backend(backend).resume('p1', values={'approved': True},\n"
    "    as_node='approve_payment', approver='carol@example.com')\n"
    "backend.close()\n"
)


def test_the_cli_decides_a_governed_step_as_its_os_account(cli: Cli) -> None:
    """Given a payment suspended before its four-eyes approval
    When the CLI resumes it with `--actor`, then without, then again, and carol completes it
    from Python
    Then `--actor` is refused (exit 2, nothing stored changes); the first resume records the
    OS account's approval and the thread waits; the second is refused (same person, exit 2,
    nothing changes); carol's resume step commits both, and `show` and `verify` name both."""
    os_actor = f"os:{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    cli.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)

    before = cli.stored()
    done = cli.run(*DECIDE, "--actor", "bob@example.com")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "as your OS account" in done.stderr and "approvals_required=2" in done.stderr
    assert "Traceback" not in done.stderr
    assert cli.stored() == before

    doc = cli.json(*DECIDE)
    assert doc["status"] == "suspended"
    [first] = doc["approvals"]["approvals"]
    assert (first["actor"]["id"], first["method"], first["via"]) == (os_actor, "os_user", "cli")

    before = cli.stored()
    again = cli.run(*DECIDE)
    assert again.returncode == 2 and "already approved" in again.stderr, again.stderr
    assert cli.stored() == before

    subprocess.run([sys.executable, "-c", PYTHON_APPROVER, str(cli.home)], env=cli.env,
                   cwd=REPO, check=True, timeout=60)  # fmt: skip
    status = cli.json("status", "p1")
    assert status["status"] == "completed" and status["values"]["outcome"] == "released"
    step = str(doc["step"] + 1)
    shown = cli.run("show", "p1", "--step", step)
    assert shown.returncode == 0, shown.stderr
    assert f"approve by human:{os_actor} (identity: os_user; via cli)" in shown.stdout
    assert "approve by human:carol@example.com (identity: caller; via python)" in shown.stdout
    verified = cli.run("verify", "p1")
    assert verified.returncode == 0, verified.stdout
    assert f"approved at step {step} by human:{os_actor}, human:carol@example.com" in (
        verified.stdout
    )


SUBGRAPH = "tests.conformance.test_signoff_subgraphs:outer"
SUBGRAPH_APPROVER = (
    "import sys\nfrom pathlib import Path\n"
    "from durable_graph.backends.local import local_backend\n"
    "from tests.conformance.test_signoff_subgraphs import outer\n"
    "backend = local_backend(Path(sys.argv[1]))\n"
    "outer.with_backend(backend).resume('s1', resume_value=True, approver='carol@example.com')\n"
    "backend.close()\n"
)


def test_the_cli_decides_a_rule_inside_a_subgraph_as_its_os_account(cli: Cli) -> None:
    """Given a payment whose subgraph waits at a four-eyes node (the parent waits at the
    subgraph node, which has no rule of its own)
    When the CLI resumes the parent with `--actor`, then without, and carol completes it
    Then `--actor` is refused (the subgraph node's rule governs the parent: exit 2, nothing
    changes), the OS account's approval is recorded and the thread waits, and carol's
    completes it: `verify` names both on the parent."""
    os_actor = f"os:{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    cli.json("run", SUBGRAPH, "--thread", "s1", "--input", REQUEST)
    decide = ("resume", "s1", "--resume-value", "true")

    before = cli.stored()
    done = cli.run(*decide, "--actor", "bob@example.com")
    assert done.returncode == 2 and "approvals_required=2" in done.stderr, done.stderr
    assert cli.stored() == before

    doc = cli.json(*decide)
    assert doc["status"] == "suspended"
    [first] = doc["approvals"]["approvals"]
    assert (first["actor"]["id"], first["method"]) == (os_actor, "os_user")

    subprocess.run([sys.executable, "-c", SUBGRAPH_APPROVER, str(cli.home)], env=cli.env,
                   cwd=REPO, check=True, timeout=60)  # fmt: skip
    assert cli.json("status", "s1")["status"] == "completed"
    verified = cli.run("verify", "s1")
    assert verified.returncode == 0, verified.stdout
    assert f"by human:{os_actor}, human:carol@example.com" in verified.stdout
