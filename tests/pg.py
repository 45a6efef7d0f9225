"""The PostgreSQL server under test: one database per test session, one schema per store.

The server is `$COURSEBOOK_TEST_PG` (`postgresql://user@host:port`; default: the local
one, user `postgres`, trust auth). The first
test that needs it creates a database `cb_test_<pid>_<random>`; every store a test makes
is a schema of its own in it (`?schema=` in the target), dropped when the test is done;
the database is dropped when the session ends. When the server cannot be reached, the
tests marked `postgres` skip with the reason, except under `CI=true`, where they fail.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from coursebook.adapters.storage.keys import key_file_for

__all__ = ["SERVER", "drop_schema", "finish", "fresh_database", "new_target",
           "postgres_database", "require", "schema_of", "terminate_connections"]

SERVER = os.environ.get("COURSEBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432") \
    .rstrip("/") + "/postgres"
"""The server's maintenance database, where the session's database is created."""
START_HINT = ("start it with: pg_ctlcluster --skip-systemctl-redirect "
              "$(ls /etc/postgresql) main start")


class _Session:
    def __init__(self) -> None:
        self.database: str | None = None
        self.unavailable: str | None = None
        self.admin: Any = None  # a connection to the session's database
        self.counter = itertools.count(1)

    def open(self) -> None:
        if self.database is not None or self.unavailable is not None:
            return
        name = f"cb_test_{os.getpid()}_{secrets.token_hex(3)}"
        try:
            with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as server:
                server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                # Tests need no durability across a server crash (the crash tests kill
                # clients, not the server): commits need not wait for the disk.
                server.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit TO off")
                               .format(sql.Identifier(name)))
            self.database = name
            self.admin = psycopg.connect(self.url(), autocommit=True, connect_timeout=3)
        except psycopg.Error as error:
            self.unavailable = " ".join(str(error).split()) or type(error).__name__

    def url(self, schema: str | None = None) -> str:
        assert self.database is not None
        parts = urlsplit(SERVER)
        query = f"schema={schema}" if schema else ""
        return urlunsplit((parts.scheme, parts.netloc, f"/{self.database}", query, ""))

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if self.database is not None:
            with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as server:
                server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)))
            # The key file `init` made for the session's database goes with it.
            key_file_for(self.url()).unlink(missing_ok=True)
            self.database = None


_session = _Session()


def require() -> None:
    """Skips the calling test (fails it under CI=true) when the server is unreachable."""
    _session.open()
    if _session.unavailable is None:
        return
    message = f"PostgreSQL unreachable at {SERVER}: {_session.unavailable}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI needs it; {START_HINT})", pytrace=False)
    pytest.skip(f"{message} ({START_HINT})")


def new_target() -> str:
    """A `postgresql://` target naming a new, empty schema of the session database (the
    schema itself is made by `coursebook init` / `open_store(create=True)`)."""
    require()
    return _session.url(f"t{next(_session.counter)}")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A target for a fresh, empty store (a schema of its own), dropped afterwards."""
    target = new_target()
    try:
        yield target
    finally:
        drop_schema(target)


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A target for a store in a whole database of its own (for tests that read the
    database's files), dropped afterwards with the key file made for it."""
    require()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    target = SERVER.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as server:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield target
    finally:
        with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        key_file_for(target).unlink(missing_ok=True)


def schema_of(target: str) -> str:
    return urlsplit(target).query.removeprefix("schema=")


def drop_schema(target: str) -> None:
    if _session.admin is not None:
        _session.admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema_of(target))))
    key_file_for(target).unlink(missing_ok=True)  # each schema has a key file of its own


def terminate_connections() -> int:
    """Ends every other connection to the session database, as a server restart would."""
    rows = _session.admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def finish() -> None:
    """Drops the session database (at the end of the test session)."""
    _session.close()
