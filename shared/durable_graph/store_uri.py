"""One store URI names where a thread lives, for every command, page and API host.

`durable-graph --store URI ...` (or `$DURABLE_GRAPH_STORE`, or nothing: the embedded store in
`$DURABLE_GRAPH_HOME`, default `./.durable-graph`) picks the backend. The schemes:

- `sqlite:///abs/folder`, `sqlite:rel/folder` — the embedded store in that folder (`state.db`,
  `payloads/`, ...); a path ending in `/state.db` names its folder. `sqlite:` alone is the
  default folder. `?encrypt=on` turns encryption at rest on (`keys.py`; it stays on for every
  later open of that folder, as does `$DURABLE_GRAPH_ENCRYPT=on`); `?encrypt=off` opens it
  without the key (reads of encrypted values fail, `verify` checks what it can).
- `aws://NAME[?region=R]` — DynamoDB + S3 (+ SQS, SNS, KMS) of a deployed stack. NAME is a
  CloudFormation stack name (its outputs `TableName`, `PayloadBucketName`, ... name every
  resource) or a DynamoDB table name (then `bucket=`, `queue=`, `key=` query parameters name
  the rest; reading needs only the table and the bucket); `data_key=` names the KMS key that
  wraps thread data keys (encryption at rest).
- `postgresql://user:pass@host:5432/db[?sslmode=...&options=-csearch_path%3Dschema]` — the
  PostgreSQL backend (docs/postgres.md): libpq's URI, with libpq's parameters; worker
  processes on any host drain its queue (`durable-graph worker`).
- `memory://NAME` — an in-process store kept under NAME for the life of the process (tests).

Why one module: every entry point (CLI, `serve`, the explorer pages, the HTTP API) resolves a
store the same way, so a URI that works for one works for all, and a bad one fails the same
way: `InvalidStoreURI` (a `UserError`: CLI exit 2, HTTP 400) naming what is wrong.

Adding a scheme is one call, and the opener is imported only when its scheme is used (so the
core never imports boto3 or psycopg)::

    register_scheme("postgresql", "durable_graph.backends.postgres.uri:open_uri")

An opener takes the parsed `StoreURI` and returns a `Backend`. `deployed_workers=True` says a
deployed fleet (Lambda, worker processes) drains the store's queue, so commands that write a
step (`fork`, `resume`) commit it and leave the running to that fleet instead of running the
thread in the CLI's process. In Python, `graph.with_backend(open_store(uri))` is the same thing.

Example:
    >>> from durable_graph.store_uri import parse_store_uri
    >>> parse_store_uri("aws://prod-graph?region=eu-west-1").name
    'prod-graph'
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from durable_graph.backend import Backend
from durable_graph.backends.local import home, local_backend
from durable_graph.backends.memory import memory_backend
from durable_graph.errors import InvalidInput
from durable_graph.keys import encryption_setting

STORE_ENV = "DURABLE_GRAPH_STORE"

Opener = Callable[["StoreURI"], Backend]


class InvalidStoreURI(InvalidInput):
    """The store URI cannot be used: unknown scheme, malformed, or names nothing we can open."""

    code = "invalid_store_uri"

    def __init__(self, uri: str, why: str) -> None:
        super().__init__(f"store URI {uri!r}: {why}", field="store")
        self.uri = uri


@dataclass(frozen=True)
class StoreURI:
    """A parsed store URI: `scheme://name/path?options`."""

    uri: str
    scheme: str
    name: str  # the authority part: a stack, table or memory store name ("" for sqlite)
    path: str  # the path part ("/abs/folder" for sqlite)
    options: dict[str, str] = field(default_factory=dict)

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def fail(self, why: str) -> InvalidStoreURI:
        return InvalidStoreURI(self.uri, why)


@dataclass(frozen=True)
class _Scheme:
    opener: Opener | str  # a callable, or "module:function" imported on first use
    deployed_workers: bool
    allowed_options: frozenset[str]

    def resolve(self, parsed: StoreURI) -> Opener:
        if callable(self.opener):
            return self.opener
        module, _, attribute = self.opener.partition(":")
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("durable_graph"):
                raise  # our own module missing is a bug, not a setup problem
            raise parsed.fail(
                f"the {parsed.scheme}:// scheme needs {exc.name!r}, which is not installed "
                f"(install the extra, e.g. pip install 'durable-graph[{parsed.scheme}]')"
            ) from None
        opener: Opener = getattr(imported, attribute)
        return opener


_SCHEMES: dict[str, _Scheme] = {}


def register_scheme(
    scheme: str,
    opener: Opener | str,
    *,
    deployed_workers: bool = False,
    options: tuple[str, ...] = (),
) -> None:
    """Make `scheme://...` openable by `opener` (a callable or a "module:function" path).

    `options` lists the query parameters the scheme accepts (any other is refused by name).
    """
    _SCHEMES[scheme.lower()] = _Scheme(opener, deployed_workers, frozenset(options))


def schemes() -> list[str]:
    return sorted(_SCHEMES)


def default_uri() -> str:
    """`$DURABLE_GRAPH_STORE`, else the embedded store (in `$DURABLE_GRAPH_HOME`)."""
    return os.environ.get(STORE_ENV) or "sqlite:"


def parse_store_uri(uri: str | None = None) -> StoreURI:
    """Parse `uri` (default: `default_uri()`); `InvalidStoreURI` says what is wrong."""
    text = default_uri() if uri is None or uri == "" else uri
    if "://" not in text and not text.lower().startswith(("sqlite:", "memory:")):
        raise InvalidStoreURI(
            text, f"expected SCHEME://..., where SCHEME is one of {', '.join(schemes())}"
        )
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
    except ValueError as exc:
        raise InvalidStoreURI(text, str(exc)) from None
    scheme = parts.scheme.lower()
    registered = _SCHEMES.get(scheme)
    if registered is None:
        raise InvalidStoreURI(
            text, f"unknown scheme {scheme!r}; known schemes: {', '.join(schemes())}"
        )
    if parts.fragment:
        raise InvalidStoreURI(text, "a store URI has no #fragment")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(pairs)
    unknown = sorted(set(options) - registered.allowed_options)
    if unknown:
        allowed = ", ".join(sorted(registered.allowed_options)) or "none"
        raise InvalidStoreURI(text, f"unknown option(s) {', '.join(unknown)} (allowed: {allowed})")
    return StoreURI(uri=text, scheme=scheme, name=netloc, path=parts.path, options=options)


def deployed_workers(uri: str | None = None) -> bool:
    """Whether a deployed fleet runs the threads of this store (see the module docstring)."""
    return _SCHEMES[parse_store_uri(uri).scheme].deployed_workers


def open_store(uri: str | None = None) -> Backend:
    """Open the backend `uri` names (default: `default_uri()`)."""
    parsed = parse_store_uri(uri)
    return _SCHEMES[parsed.scheme].resolve(parsed)(parsed)


# ------------------------------------------------------------------------- built-in schemes


def store_folder(parsed: StoreURI) -> Path:
    """The embedded store's folder a `sqlite:` URI names."""
    if parsed.name not in ("", "localhost"):
        raise parsed.fail(
            "sqlite URIs name a local folder: sqlite:///absolute/folder or sqlite:relative/folder"
        )
    if not parsed.path:
        return home()
    folder = Path(parsed.path)
    if folder.name == "state.db":
        folder = folder.parent
    elif folder.suffix in (".db", ".sqlite", ".sqlite3"):
        raise parsed.fail(
            "sqlite URIs name the store's folder (it holds state.db and payloads/), not a file"
        )
    return folder.resolve()


def _open_sqlite(parsed: StoreURI) -> Backend:
    folder = store_folder(parsed)
    try:
        encrypt = encryption_setting(parsed.option("encrypt"))
    except InvalidInput as exc:
        raise parsed.fail(str(exc)) from None
    return local_backend(folder, encrypt=encrypt)


_MEMORY: dict[str, Backend] = {}
_MEMORY_LOCK = threading.Lock()


def _open_memory(parsed: StoreURI) -> Backend:
    name = parsed.name + parsed.path
    if not name:
        raise parsed.fail("name the in-process store: memory://NAME")
    with _MEMORY_LOCK:
        if name not in _MEMORY:
            _MEMORY[name] = memory_backend()
        return _MEMORY[name]


def forget_memory_stores() -> None:
    """Drop every `memory://` store of this process (tests)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


# libpq's connection parameters, which a postgresql:// URI may carry as query parameters.
_LIBPQ_OPTIONS = (
    "application_name",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "gssencmode",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "options",
    "passfile",
    "password",
    "port",
    "service",
    "sslcert",
    "sslcrl",
    "sslkey",
    "sslmode",
    "sslpassword",
    "sslrootcert",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
)

register_scheme("sqlite", _open_sqlite, options=("encrypt",))
register_scheme("memory", _open_memory)
for _scheme in ("postgresql", "postgres"):  # libpq accepts both spellings
    register_scheme(_scheme, "durable_graph.backends.postgres.uri:open_uri", options=_LIBPQ_OPTIONS)
register_scheme(
    "aws",
    "durable_graph.backends.aws.locate:open_aws",
    deployed_workers=True,
    options=("region", "bucket", "queue", "key", "data_key", "dlq", "topic", "profile"),
)

__all__ = [
    "STORE_ENV",
    "InvalidStoreURI",
    "Opener",
    "StoreURI",
    "default_uri",
    "deployed_workers",
    "forget_memory_stores",
    "open_store",
    "parse_store_uri",
    "register_scheme",
    "schemes",
]
