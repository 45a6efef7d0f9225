"""Where the store lives: a target (SQLite path or `postgresql://` URL) to an application.

The embedded default is one SQLite file. Opening never creates a store by accident: only
`init` (and `demo`) may create one; everything else fails with `StoreUnavailable` (exit 4).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import MapperDeserialisationError, PersistenceError

from coursebook.adapters.keys import (
    MASTER_KEY_ENV,
    MasterKey,
    create_key_file,
    key_file_for,
    read_key_file,
)
from coursebook.application import Coursebook
from coursebook.clock import Clock
from coursebook.errors import StoreUnavailable

__all__ = ["DAMAGED", "DEFAULT_TARGET", "is_postgres", "open_store", "resolve_target",
           "store_env"]

DEFAULT_TARGET = "coursebook.db"
DAMAGED = ("a stored record cannot be read: the store was changed outside the engine "
           "(run: coursebook verify)")


def resolve_target(target: str | None) -> str:
    return target or os.environ.get("COURSEBOOK_DB") or DEFAULT_TARGET


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def store_env(target: str, *, create: bool) -> dict[str, str]:
    """The eventsourcing environment for a target."""
    if is_postgres(target):
        url = urlsplit(target)
        dbname = unquote(url.path.lstrip("/")) or "postgres"
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "4",
        }
    else:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": target,
               "SQLITE_LOCK_TIMEOUT": "10"}
    env["CREATE_TABLE"] = "y" if create else "n"
    return env


def _table_names(path: Path, target: str) -> set[str]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise StoreUnavailable(f"{target} is not a coursebook store") from None


def _check_sqlite_file(target: str) -> None:
    path = Path(target)
    if not path.is_file():
        raise StoreUnavailable(f"no store at {target} (run: coursebook init)")
    if "stored_events" not in _table_names(path, target):
        raise StoreUnavailable(f"{target} is not a coursebook store (run: coursebook init)")


def _check_sqlite_target_for_create(target: str) -> None:
    """Creating may start from nothing or an empty file, never inside another database."""
    path = Path(target)
    if path.is_dir():
        raise StoreUnavailable(f"{target} is a directory, not a store file")
    if not path.is_file() or path.stat().st_size == 0:
        return
    names = _table_names(path, target)
    if names and "stored_events" not in names:
        raise StoreUnavailable(f"{target} holds another database, not a coursebook store; "
                               "refusing to add tables to it")


def _check_postgres_database(target: str) -> None:
    """A clear message for a database that holds no store, before asking for its key."""
    import psycopg

    try:
        with psycopg.connect(target, connect_timeout=5) as conn:
            row = conn.execute("SELECT to_regclass('coursebook_events') IS NOT NULL, "
                               "to_regclass('coursebook_keys') IS NOT NULL").fetchone()
    except psycopg.Error as error:
        raise StoreUnavailable(f"cannot open the store at {_safe(target)}: "
                               f"{type(error).__name__}") from None
    if row is None or not row[0]:
        raise StoreUnavailable(f"no coursebook store at {_safe(target)} "
                               "(run: coursebook init)")
    if not row[1]:
        raise StoreUnavailable(f"the store at {_safe(target)} has no key table "
                               "(run: coursebook init)")


def open_store(target: str, *, create: bool = False, clock: Clock | None = None,
               extra_env: Mapping[str, str] | None = None, damaged_ok: bool = False,
               **kwargs: Any) -> Coursebook:
    """Opens (or, with `create`, creates) the store at `target`. `damaged_ok` opens a
    store whose settings record cannot be read (for `verify`, which names the damage)."""
    if is_postgres(target):
        if not create:
            _check_postgres_database(target)
    elif create:
        _check_sqlite_target_for_create(target)
    else:
        _check_sqlite_file(target)
    env = {**store_env(target, create=create), **(extra_env or {})}
    made: Path | None = None
    if "master_key" not in kwargs:
        kwargs["master_key"], made = _master_key(target, env, create=create)
    try:
        app = Coursebook(env, clock=clock, **kwargs)
        try:
            initialised = app.is_initialised()
        except MapperDeserialisationError:
            if not damaged_ok:
                app.close()
                raise StoreUnavailable(DAMAGED) from None
            initialised = True
        if not create and not initialised:
            app.close()
            raise StoreUnavailable(f"no coursebook store at {_safe(target)} "
                                   "(run: coursebook init)")
    except StoreUnavailable as error:
        _forget(made)
        if made is not None:  # the store exists and a new key cannot open it
            raise StoreUnavailable(f"the store's key cannot be found: set {MASTER_KEY_ENV} "
                                   f"or put its key file at {made}") from None
        raise error from None
    except (PersistenceError, sqlite3.Error, OSError) as error:
        _forget(made)
        raise StoreUnavailable(f"cannot open the store at {_safe(target)}: "
                               f"{type(error).__name__}") from None
    return app


def _master_key(target: str, env: Mapping[str, str], *,
                create: bool) -> tuple[MasterKey, Path | None]:
    """The store's master key: `COURSEBOOK_MASTER_KEY`, else its key file, which only
    `init` (create) makes, with owner-only permissions. Returns the file it made, if any."""
    text = env.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_ENV)
    if text:
        return MasterKey.from_text(text, MASTER_KEY_ENV), None
    path = key_file_for(target)
    found = read_key_file(path)
    if found is not None:
        return found, None
    if not create:
        raise StoreUnavailable(f"the store's key cannot be found: set {MASTER_KEY_ENV} or "
                               f"put its key file at {path}")
    try:
        return create_key_file(path), path
    except FileExistsError:  # another init made it meanwhile
        found = read_key_file(path)
        if found is None:
            raise StoreUnavailable(f"cannot read the key file {path}") from None
        return found, None
    except OSError as error:
        raise StoreUnavailable(f"cannot create the key file {path}: "
                               f"{error.strerror or type(error).__name__}") from None


def _forget(made: Path | None) -> None:
    """A key file made for a store that could not be created is of no use to anyone."""
    if made is not None:
        made.unlink(missing_ok=True)


def _safe(target: str) -> str:
    """A target fit for messages: a URL without its password."""
    if is_postgres(target):
        url = urlsplit(target)
        host = url.hostname or ""
        port = f":{url.port}" if url.port else ""
        user = f"{url.username}@" if url.username else ""
        return f"{url.scheme}://{user}{host}{port}{url.path}"
    return target
