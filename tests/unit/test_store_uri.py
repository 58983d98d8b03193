"""Store URIs: parsing, the built-in schemes, registering one, and bad URIs (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.memory import memory_backend
from durable_graph.cli import main
from durable_graph.store_uri import (
    STORE_ENV,
    InvalidStoreURI,
    StoreURI,
    open_store,
    parse_store_uri,
    register_scheme,
    store_folder,
)

REPO = Path(__file__).resolve().parents[2]


def test_sqlite_uris_name_the_store_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.setenv("DURABLE_GRAPH_HOME", str(tmp_path / "home"))
    assert store_folder(parse_store_uri(f"sqlite://{tmp_path}/s")) == tmp_path / "s"
    assert store_folder(parse_store_uri(f"sqlite://{tmp_path}/s/state.db")) == tmp_path / "s"
    assert store_folder(parse_store_uri(None)) == tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    assert store_folder(parse_store_uri("sqlite:rel/x")) == tmp_path / "rel" / "x"
    monkeypatch.setenv(STORE_ENV, f"sqlite://{tmp_path}/from-env")
    assert store_folder(parse_store_uri(None)) == tmp_path / "from-env"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("mysql://db", "unknown scheme 'mysql'"),
        ("/just/a/path", "expected SCHEME://"),
        ("sqlite://host/x", "name a local folder"),
        ("sqlite:///tmp/x.sqlite", "not a file"),
        ("memory://", "name the in-process store"),
        ("aws://stack?colour=blue", "unknown option(s) colour"),
        ("sqlite:///x#frag", "no #fragment"),
    ],
)
def test_bad_uris_say_why(uri: str, says: str) -> None:
    with pytest.raises(InvalidStoreURI, match="store URI") as caught:
        open_store(uri)
    assert says in str(caught.value) and caught.value.field == "store"


def test_a_registered_scheme_is_one_call() -> None:
    opened: list[StoreURI] = []
    built = memory_backend()

    def opener(parsed: StoreURI) -> Backend:
        opened.append(parsed)
        return built

    register_scheme("testdb", opener, options=("pool",))
    assert open_store("testdb://h:5/db?pool=3") is built
    assert opened[0].name == "h:5" and opened[0].path == "/db" and opened[0].option("pool") == "3"


def test_cli_bad_store_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "t", "--store", "nope://x"]) == 2
    err = capsys.readouterr().err
    assert "store URI 'nope://x': unknown scheme 'nope'" in err and "Traceback" not in err


def test_env_store_in_a_real_process(tmp_path: Path) -> None:
    """`DURABLE_GRAPH_STORE` is the default store of every command, in a real process."""
    env = {
        **os.environ,
        STORE_ENV: f"sqlite://{tmp_path}/env-store",
        "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "durable_graph", "verify", "--all", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env-store" / "state.db").exists()
    assert not (tmp_path / ".durable-graph").exists()
