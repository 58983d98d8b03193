"""A real PostgreSQL server for the tests, from the Debian package's binaries.

`initdb` and `pg_ctl` refuse to run as root, so as root they run as the `postgres` user the
package creates (`runuser`). The cluster lives in a fresh temporary folder, listens on
127.0.0.1 on a free port (and a socket in that folder), trusts local connections, and is
removed when stopped. A server that cannot start raises `ServerUnavailable` with its log: the
Postgres tests then fail, loudly, instead of being skipped (`make test` installs the package:
.ci/install-postgres).

`fsync=off` unless asked (the benchmark keeps it on): the tests check our conditions and
transactions, not the disk; a restart in the fault tests is a clean `pg_ctl stop -m fast`,
which loses nothing without fsync either.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"


class ServerUnavailable(RuntimeError):
    """The test server could not be started (the message says why, with its log)."""


def binaries() -> Path:
    """The newest installed server's bin folder."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise ServerUnavailable(
            f"no PostgreSQL server binaries under {BIN_GLOB}: install the Debian package "
            "`postgresql` (bash .ci/install-postgres; `make test` does it)"
        )
    return Path(found[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throwaway cluster: `start()`, `uri()`, `stop()`, `restart()`."""

    def __init__(self, *, settings: Sequence[str] = (), fsync: bool = False) -> None:
        self.bin = binaries()
        self.root = Path(tempfile.mkdtemp(prefix="dg-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.settings = (f"fsync={'on' if fsync else 'off'}", "max_connections=200", *settings)
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, SERVICE_USER, SERVICE_USER)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise ServerUnavailable(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"\n{self.server_log()}"
            )

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        options = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1"]
            + [f"-c unix_socket_directories={self.root}"]
            + [f"-c {s}" for s in self.settings]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, *, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def uri(self, database: str = "postgres", *, schema: str | None = None) -> str:
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return base if schema is None else f"{base}?options=-csearch_path%3D{schema}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.uri(database), autocommit=True)

    def new_schema(self) -> str:
        """A fresh, empty schema: one store per test, without a database per test."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return name

    def drop_schema(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE".encode())

    def destroy(self) -> None:
        with contextlib.suppress(ServerUnavailable):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """The one server of this test session, started on first use, destroyed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            server = PostgresServer()
            try:
                server.start()
            except ServerUnavailable:
                server.destroy()
                raise
            atexit.register(server.destroy)
            _shared = server
        return _shared


@contextlib.contextmanager
def fresh_schema_uri() -> Iterator[str]:
    """A URI for a new, empty store on the shared server, dropped afterwards."""
    server = shared_server()
    schema = server.new_schema()
    try:
        yield server.uri(schema=schema)
    finally:
        server.drop_schema(schema)
