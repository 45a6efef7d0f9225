"""Where the store lives: a target (SQLite path or `postgresql://` URL) to an application.

The embedded default is one SQLite file. Opening never creates a store by accident: only
`init` (and `demo`) may create one; everything else fails with `StoreUnavailable` (exit 4).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from coursebook.adapters.storage.keys import (
    MASTER_KEY_ENV,
    MasterKey,
    configured_master_key,
    create_key_file,
    key_file_for,
    missing_key,
    new_master_key_text,
    read_key_file,
    replace_key_file,
)
from coursebook.errors import StoreUnavailable

__all__ = ["DAMAGED", "DEFAULT_TARGET", "NEW_MASTER_KEY_ENV", "NewMasterKey", "check_target",
           "forget_key_file", "is_postgres", "master_key_for", "new_master_key",
           "resolve_target", "safe_target", "store_env"]

DEFAULT_TARGET = "coursebook.db"
DAMAGED = ("a stored record cannot be read: the store was changed outside the engine "
           "(run: coursebook verify)")
EVENTS_TABLE = "coursebook_events"
"""The table eventsourcing names after the application (`Coursebook.name`)."""
KEYS_TABLE = "coursebook_keys"
CONNECT_TIMEOUT = 5
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def resolve_target(target: str | None) -> str:
    return target or os.environ.get("COURSEBOOK_DB") or DEFAULT_TARGET


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def store_env(target: str, *, create: bool, pool: bool = True) -> dict[str, str]:
    """The eventsourcing environment for a target (`pool=False`: on PostgreSQL, plain
    connections instead of the library's pool, see `pg_schema`)."""
    if is_postgres(target):
        url = _parse_url(target)
        env = {
            "PERSISTENCE_MODULE": "coursebook.adapters.storage.pg_schema:PostgresFactory",
            "POSTGRES_DBNAME": url["dbname"],
            "POSTGRES_HOST": url["host"],
            "POSTGRES_PORT": url["port"],
            "POSTGRES_USER": url["user"],
            "POSTGRES_PASSWORD": url["password"],
            "POSTGRES_SCHEMA": url["schema"],
            "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }
        if not pool:
            env["POSTGRES_POOL"] = "n"
    else:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": target,
               "SQLITE_LOCK_TIMEOUT": "10"}
    env["CREATE_TABLE"] = "y" if create else "n"
    return env


def _parse_url(target: str) -> dict[str, str]:
    """The parts of a `postgresql://user:password@host:port/dbname?schema=NAME` target."""
    try:
        url = urlsplit(target)
        port = url.port
    except ValueError:
        raise StoreUnavailable(f"{safe_target(target)} is not a valid postgresql:// URL") \
            from None
    query = parse_qs(url.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"schema"})
    if unknown:
        raise StoreUnavailable(f"unsupported parameter {unknown[0]!r} in the store URL "
                               "(coursebook understands only ?schema=NAME)")
    schemas = query.get("schema", [""])
    if len(schemas) > 1:
        raise StoreUnavailable("schema: given more than once in the store URL; give it once")
    schema = schemas[0]
    if schema and not _SCHEMA_NAME.fullmatch(schema):
        raise StoreUnavailable("schema: must be a lower-case SQL name (letters, digits, _)")
    if schema == "information_schema" or schema.startswith("pg_"):
        raise StoreUnavailable(f"schema: {schema} belongs to PostgreSQL itself; give a "
                               "schema of your own")
    return {"dbname": unquote(url.path.lstrip("/")) or "postgres",
            "host": url.hostname or "127.0.0.1", "port": str(port or 5432),
            "user": unquote(url.username or "postgres"),
            "password": unquote(url.password or ""), "schema": schema or "public"}


def _postgres_reason(error: Exception, password: str) -> str:
    """psycopg's explanation on one line, never with the password in it."""
    reason = " ".join(str(error).split()) or type(error).__name__
    reason = reason.removeprefix("connection failed: ")
    if password:
        reason = reason.replace(password, "***")
    return reason


def _check_postgres(target: str, *, create: bool) -> None:
    """Fails fast and clearly when the server, database or store is not there.

    With `create`, makes the URL's schema if it is missing (the tables come with the
    application). Without it, the store's events table must already exist.
    """
    import psycopg  # here: a SQLite store never needs the PostgreSQL driver
    from psycopg import sql

    url = _parse_url(target)
    try:
        with psycopg.connect(dbname=url["dbname"], host=url["host"], port=url["port"],
                             user=url["user"], password=url["password"] or None,
                             connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            if create:
                if url["schema"] != "public":
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(url["schema"])))
                return
            row = conn.execute("SELECT to_regclass(%s), to_regclass(%s)",
                               (f'"{url["schema"]}".{EVENTS_TABLE}',
                                f'"{url["schema"]}".{KEYS_TABLE}')).fetchone()
    except psycopg.Error as error:
        raise StoreUnavailable(f"cannot open the store at {safe_target(target)}: "
                               f"{_postgres_reason(error, url['password'])}") from None
    if row is None or row[0] is None:
        raise StoreUnavailable(f"no coursebook store at {safe_target(target)} "
                               "(run: coursebook init)")
    if row[1] is None:
        raise StoreUnavailable(f"the store at {safe_target(target)} has no key table "
                               "(run: coursebook init)")


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


def check_target(target: str, *, create: bool) -> None:
    """Fails with `StoreUnavailable` unless `target` holds a store (or, with `create`,
    may receive one)."""
    if is_postgres(target):
        _check_postgres(target, create=create)
    elif create:
        _check_sqlite_target_for_create(target)
    else:
        _check_sqlite_file(target)


def master_key_for(target: str, env: Mapping[str, str], *,
                create: bool) -> tuple[MasterKey, Path | None]:
    """The store's master key: `COURSEBOOK_MASTER_KEY`, else its key file, which only
    `init` (create) makes, with owner-only permissions. Returns the file it made, if any."""
    found = configured_master_key(target, env)
    if found is not None:
        return found, None
    if not create:
        raise missing_key(target)
    path = key_file_for(target)
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


NEW_MASTER_KEY_ENV = "COURSEBOOK_NEW_MASTER_KEY"


class NewMasterKey:
    """The new master key of a rotation, and where it goes once the store is re-wrapped."""

    def __init__(self, key: MasterKey, text: str, key_file: Path | None,
                 staged: Path | None) -> None:
        self.key, self.text, self.key_file, self.staged = key, text, key_file, staged

    def install(self) -> None:
        """After the store was re-wrapped: the key file (if the store uses one) now
        holds the new key."""
        if self.key_file is not None:
            replace_key_file(self.key_file, self.text)
        if self.staged is not None:
            self.staged.unlink(missing_ok=True)


def new_master_key(target: str, new_key_file: str | None,
                   env: Mapping[str, str]) -> NewMasterKey:
    """The new key for `keys rotate`: from `new_key_file` (owner-only), else
    `COURSEBOOK_NEW_MASTER_KEY`, else, for a store whose key is in a key file, a new random
    key (staged beside the key file first, so that a crash never loses it). Raises
    `ValueError` when the key comes from the environment and no new one is given."""
    key_file = None if env.get(MASTER_KEY_ENV) else key_file_for(target)
    if new_key_file is not None:
        key = read_key_file(Path(new_key_file))
        if key is None:
            raise StoreUnavailable(f"no key file at {new_key_file}")
        return NewMasterKey(key, Path(new_key_file).read_text(encoding="ascii"), key_file,
                            None)
    if env.get(NEW_MASTER_KEY_ENV):
        text = env[NEW_MASTER_KEY_ENV]
        return NewMasterKey(MasterKey.from_text(text, NEW_MASTER_KEY_ENV), text, key_file,
                            None)
    if key_file is None:
        raise ValueError(f"the master key comes from {MASTER_KEY_ENV}: give the new one "
                         f"with --new-key-file or {NEW_MASTER_KEY_ENV}")
    text = new_master_key_text()
    staged = key_file.with_name(key_file.name + ".new")
    replace_key_file(staged, text)
    return NewMasterKey(MasterKey.from_text(text, "the new key"), text, key_file, staged)


def forget_key_file(made: Path | None) -> None:
    """A key file made for a store that could not be created is of no use to anyone."""
    if made is not None:
        made.unlink(missing_ok=True)


def safe_target(target: str) -> str:
    """A target fit for messages: a URL without its password."""
    if is_postgres(target):
        try:
            url = urlsplit(target)
        except ValueError:  # e.g. a malformed IPv6 address: nothing in it can be trusted
            return f"{target.split(':', 1)[0]}://(malformed URL)"
        try:
            host, port = url.hostname or "", f":{url.port}" if url.port else ""
        except ValueError:
            host, port = "?", ""
        user = f"{url.username}@" if url.username else ""
        schemas = [value for name, value in parse_qsl(url.query, keep_blank_values=True)
                   if name == "schema"]  # nothing else: another parameter may be a secret
        query = "".join(f"{'&' if i else '?'}schema={value}"
                        for i, value in enumerate(schemas))
        return f"{url.scheme}://{user}{host}{port}{url.path}{query}"
    return target


