"""Write the real output in `docs/erasure-and-retention.md`: an erasure request end to end,
and erasure by key destruction on an encrypted store.

Runs the CLI in subprocesses, as an operator would, on embedded (SQLite) stores in temporary
folders; the payment-approval example carries the personal data. The page's prose is edited by
hand; what this writes is each region between `<!-- generated: NAME ... -->` and
`<!-- end generated: NAME -->` (the commands, their output, and the lines between them), so
the two cannot drift apart. Re-run it after changing the CLI or the record format:

    PYTHONPATH=shared:. python docs/erasure_and_retention.py
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = Path(__file__).with_name("erasure-and-retention.md")
TAMPER = """import json, sqlite3, zstandard

db = sqlite3.connect("store/state.db")
where = "WHERE thread_id = 'tx-1001' AND step = 0"
(body,) = db.execute(f"SELECT body FROM checkpoints {where}").fetchone()
row = json.loads(zstandard.decompress(body) if isinstance(body, bytes) else body)
del row["changes"]["recipient"]["s"], row["changes"]["recipient"]["v"]
db.execute(f"UPDATE checkpoints SET body = ? {where}", (json.dumps(row),))
db.commit()
"""
APP = """from durable_graph.retention_policy import Retention
from examples.email_approval import builder

graph = builder.compile(
    interrupt_before=["human_review"], name="payments:graph", retention=Retention(days=30)
)
"""
PROMPT = "pay Jane Roe (IBAN DE44 5001 0517 5407 3249 31) for the March invoice"


class Page:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.parts: list[str] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DURABLE_GRAPH")},
            "PYTHONPATH": f"{REPO / 'shared'}:{REPO}:{work}",
            "DURABLE_GRAPH_HOME": str(work / "home"),
            "DURABLE_GRAPH_STORE": f"sqlite://{work / 'store'}",
            "USER": "dpo",
        }

    def say(self, text: str) -> None:
        self.parts.append(text.strip("\n") + "\n")

    def run(
        self,
        line: str,
        expect: int = 0,
        show: Callable[[str], str] | None = None,
        join: bool = False,
    ) -> str:
        """Run `line` (a `durable-graph ...` or shell command) in the work folder, show it
        (its output as `show` abridges it; `join`: in the previous command's block)."""
        args = shlex.split(line)
        if args[0] == "durable-graph":
            args = [sys.executable, "-m", "durable_graph", *args[1:]]
        elif args[0] == "python3":  # the Python durable-graph runs in (tamper.py needs zstandard)
            args = [sys.executable, *args[1:]]
        done = subprocess.run(
            args, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=120
        )
        out = (done.stdout + done.stderr).replace(str(self.work), ".")
        if done.returncode != expect:
            raise SystemExit(f"{line}: exit {done.returncode}, expected {expect}\n{out}")
        printed = show(out) if show is not None else out
        shown = f"$ {line}\n{printed}" + (f"(exit {done.returncode})\n" if done.returncode else "")
        if join and self.parts and self.parts[-1].startswith("```console"):
            shown = self.parts.pop().removeprefix("```console\n").removesuffix("```\n") + shown
        self.parts.append(f"```console\n{shown.rstrip()}\n```\n")
        return out


def main() -> None:
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {PAGE}")


def render(text: str) -> str:
    """`text` (the page) with every generated region run again (each command's exit code is
    checked as it goes: `Page.run`)."""
    for name, write in (("encrypted", encrypted), ("walkthrough", walk)):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "payments.py").write_text(APP)
            page = Page(work)
            write(page)
        text = replace_region(text, name, "\n".join(page.parts))
    return text


def replace_region(text: str, name: str, body: str) -> str:
    """`text` with its generated region `name` holding `body` instead."""
    begin = f"<!-- generated: {name} (docs/erasure_and_retention.py) -->\n"
    end = f"<!-- end generated: {name} -->"
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"{PAGE}: needs exactly one region {begin.strip()} ... {end}")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{body.strip()}\n\n{end}{tail}"


def elided(keep: str = "") -> Callable[[str], str]:
    """Show a command's output as `...`, and its lines containing `keep` (if any)."""

    def show(out: str) -> str:
        lines = [line for line in out.splitlines() if keep and keep in line]
        return "...\n" + "".join(f"{line}\n" for line in lines)

    return show


def encrypted(page: Page) -> None:
    """Erasure by key destruction: an encrypted store, searched, verified without the key,
    erased whole."""
    page.run("durable-graph --store 'sqlite:./store?encrypt=on' run examples.email_approval:graph "
             f"--thread tx-2001 --input '{{\"user_prompt\": \"{PROMPT}\"}}'",
             show=elided())  # fmt: skip
    page.run("durable-graph resume tx-2001 --as-node human_review --values '{\"approved\": true}'",
             show=elided("user_prompt"), join=True)  # fmt: skip
    page.say("No byte of the store holds the IBAN or the name: not the checkpoint rows, the "
             "thread heads,\nthe queue, the notification outbox, the payload objects, nor the "
             "email the node sent (the\n`mail` row and its `outbox/sent/` copy hold it sealed, "
             "`record-format.md` §14):")  # fmt: skip
    page.run("sqlite3 store/state.db \"SELECT count(*) FROM checkpoints WHERE CAST(body AS TEXT) "
             "LIKE '%DE44%'\"")  # fmt: skip
    page.run("sqlite3 store/state.db \"SELECT count(*) FROM mail WHERE CAST(body AS TEXT) LIKE "
             "'%DE44%' OR CAST(body AS TEXT) LIKE '%Jane Roe%'\"", join=True)  # fmt: skip
    page.run("grep -rl -e DE44 -e 'Jane Roe' store", expect=1, join=True)
    page.say("A verifier without the key checks everything it can:")
    page.run("durable-graph --store 'sqlite:./store?encrypt=off' verify tx-2001")
    page.say("Erasing the whole thread destroys its data key:")
    page.run("durable-graph erase tx-2001 --reason 'GDPR Art. 17 request 2026-131 (Jane Roe)' "
             "--actor dpo@example.com")  # fmt: skip
    page.run("durable-graph verify tx-2001")
    page.run("sqlite3 store/state.db \"SELECT body FROM records WHERE thread_id = 'tx-2001' AND "
             "key = 'key#data'\"")  # fmt: skip


def walk(page: Page) -> None:
    """The erasure request, its proof, the audit bundle, tampering, and retention."""
    page.say(f"```python\n{APP}```")
    page.say("## 1. The thread that holds the data\n\nA payment request naming a person and "
             "their IBAN is drafted by the (fake) LLM, approved, and sent:")  # fmt: skip
    page.run(f"durable-graph run payments:graph --thread tx-1001 --input "
             f"'{{\"user_prompt\": \"{PROMPT}\"}}'")  # fmt: skip
    page.run("durable-graph resume tx-1001 --as-node human_review --values '{\"approved\": true}'")
    page.say("## 2. The erasure request\n\nJane Roe asks for her data to be erased. The data "
             "protection officer erases the three fields that hold it, at every step, giving "
             "the reason that goes into the signed erasure record:")  # fmt: skip
    page.run("durable-graph erase tx-1001 --fields user_prompt,subject,draft "
             "--reason 'GDPR Art. 17 request 2026-118 (Jane Roe)' "
             "--actor dpo@example.com")  # fmt: skip
    page.say("## 3. The proof still holds\n\n`verify` recomputes every hash, link and state "
             "root: the digests of the erased values are still there. It lists what was "
             "erased, where, by whom and why:")  # fmt: skip
    page.run("durable-graph verify tx-1001")
    page.say("Reads show the erased fields as such; the others are intact:")
    page.run("durable-graph show tx-1001 --step 1")
    page.run("durable-graph diff tx-1001 0 1")
    page.say("`replay` cannot feed the node its erased inputs, and says so:")
    page.run("durable-graph replay tx-1001 --step 1", expect=1)
    page.say("## 4. The audit bundle holds none of the erased bytes\n\nAn export made after "
             "the erasure verifies offline and contains neither the IBAN nor the "
             "name:")  # fmt: skip
    page.run("durable-graph export tx-1001 --out bundle.json")
    page.run("durable-graph verify --bundle bundle.json")
    page.run("grep -c -e 'DE44' -e 'Jane Roe (IBAN' bundle.json", expect=1)
    page.say("The email the thread sent, as the store's outbox keeps it (the `mail` row and its "
             "file copy), says to whom it went and who erased the rest; what the mail service "
             "delivered is the recipient's copy, out of reach:")  # fmt: skip
    page.run('sqlite3 store/state.db "SELECT body FROM mail"')
    page.run("grep -rl -e DE44 -e 'Jane Roe' store/outbox", expect=1)
    page.say("## 5. Tampering after erasure is still caught\n\nSomeone with write access "
             "drops a value that no erasure record names (the `recipient` at step 0):")  # fmt: skip
    (page.work / "tamper.py").write_text(TAMPER)
    page.say(f"```python\n# tamper.py (a big row body is stored zstd-compressed)\n{TAMPER}```\n")
    page.run("python3 tamper.py")
    page.run("durable-graph verify tx-1001", expect=1)
    page.say("## 6. Retention\n\n`payments:graph` keeps values 30 days "
             "(`compile(retention=Retention(days=30))`). A second thread runs today and is "
             "rejected; "
             "`retention run` (a scheduled job) erases every value older than the policy, "
             "leaving the chain and a signed tombstone. `--as-of` applies the policy as of a "
             "given time, here 31 days from now:")  # fmt: skip
    page.run("durable-graph run payments:graph --thread tx-1002 --input "
             "'{\"user_prompt\": \"pay ACME for the April invoice\"}'")  # fmt: skip
    page.run("durable-graph resume tx-1002 --as-node human_review --values '{\"approved\": false}'")
    later = (datetime.now().astimezone() + timedelta(days=31)).strftime("%Y-%m-%dT00:00:00Z")
    page.run("durable-graph retention run")
    page.run(f"durable-graph retention run --as-of {later}")
    page.run("durable-graph verify tx-1002")


if __name__ == "__main__":
    main()
