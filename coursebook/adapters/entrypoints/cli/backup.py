"""`coursebook backup FILE`: a consistent copy of a SQLite store, taken while it is in use.

SQLite's online backup API copies the database in one read transaction (in one step: a
stepped backup restarts whenever another process writes, and could never finish under
steady writes); in WAL mode writers in other processes go on meanwhile, and the copy is
the store as of one moment, never a torn file. The store's key file (`<store>.key`), if
there is one, is copied beside the backup (`FILE.key`, owner-only). A PostgreSQL store
is backed up with `pg_dump`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_STORE,
    EXIT_USAGE,
    Context,
    emit,
    user_error,
)
from coursebook.errors import StoreUnavailable

__all__ = ["backup_sqlite", "register"]


def register(cli: click.Group) -> None:
    cli.add_command(backup)


def key_file_of(store: str) -> Path:
    return Path(f"{store}.key")


def backup_sqlite(store: str, destination: Path) -> dict[str, Any]:
    """Copies the SQLite store to `destination` (which must not exist) and its key file to
    `destination.key`. The copy is written beside the destination, checked, then renamed
    into place, so a failure never leaves a partial backup under the given name."""
    import shutil  # here: every other command-line call would pay for its import

    partial = destination.with_name(f".{destination.name}.partial")
    try:
        uri = f"{Path(store).resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as source, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            if copy.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError("the copy failed its integrity check")
        key_copy = None
        key = key_file_of(store)
        if key.is_file():
            key_copy = Path(f"{destination}.key")
            fd = os.open(key_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, key.open("rb") as source_key:
                shutil.copyfileobj(source_key, out)
        if destination.exists():
            raise FileExistsError(destination)
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return {"store": store, "backup": str(destination),
            "bytes": destination.stat().st_size,
            "key_file": None if key_copy is None else str(key_copy)}


@click.command()
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.pass_obj
def backup(ctx: Context, file: str) -> None:
    """Copy the SQLite store to FILE while it is in use (and its key file to FILE.key)."""
    from coursebook.bootstrap import is_postgres, safe_target

    if is_postgres(ctx.target):
        raise user_error(
            f"backup copies SQLite stores; back up {safe_target(ctx.target)} with pg_dump "
            "(e.g. pg_dump --format=custom --file=FILE DBNAME; see docs/deployment.md)",
            EXIT_USAGE)
    destination = Path(file)
    if destination.exists() or Path(f"{file}.key").exists():
        raise user_error(f"{file} (or {file}.key) already exists; give a new path",
                         EXIT_USAGE)
    try:
        with ctx.store():  # a coursebook store, and not just any file
            pass
    except StoreUnavailable as error:
        raise user_error(str(error), EXIT_STORE) from None
    try:
        report = backup_sqlite(ctx.target, destination)
    except (OSError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise user_error(f"cannot write the backup {file}: {reason}", EXIT_USAGE) from None
    emit(ctx, report, lambda console: console.print(
        f"backed up {report['store']} to {report['backup']} ({report['bytes']} bytes)"
        + (f", key file to {report['key_file']}" if report["key_file"] else "")))
