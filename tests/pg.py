"""A PostgreSQL database of its own for a test: created, then dropped.

The server is the one at 127.0.0.1:5432 (user `postgres`, trust auth) unless
`COURSEBOOK_TEST_PG` names another (`postgresql://user@host:port`). Unreachable: the test
is skipped with the reason, except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

__all__ = ["SERVER", "postgres_database"]

SERVER = os.environ.get("COURSEBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin() -> psycopg.Connection[object]:
    try:
        return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at {SERVER} is unreachable ({type(error).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " and CI=true requires it")
        pytest.skip(reason)


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, empty database, dropped afterwards."""
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
