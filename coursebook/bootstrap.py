"""Assembles the application from its parts: a target (SQLite path or `postgresql://`
URL) becomes a `Coursebook` over the right storage.

The one place that knows both the service and the storage adapters, so that neither
imports the other. Opening never creates a store by accident: only `create=True` (the
command line's `init` and `demo`) may make one; otherwise a target without a store is
`StoreUnavailable`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventsourcing.persistence import MapperDeserialisationError, PersistenceError

from coursebook.adapters.storage.keys import MasterKey, key_file_for, missing_key
from coursebook.adapters.storage.persistence import (
    DAMAGED,
    DEFAULT_TARGET,
    check_target,
    forget_key_file,
    is_postgres,
    master_key_for,
    new_master_key,
    resolve_target,
    safe_target,
    store_env,
)
from coursebook.clock import Clock
from coursebook.errors import StoreUnavailable, Tampered
from coursebook.service.application import Coursebook

__all__ = ["DAMAGED", "DEFAULT_TARGET", "is_postgres", "key_file_for", "open_store",
           "resolve_target", "rotate_master_key", "safe_target"]


def open_store(target: str, *, create: bool = False, clock: Clock | None = None,
               master_key: MasterKey | None = None,
               extra_env: Mapping[str, str] | None = None, damaged_ok: bool = False,
               pool: bool = True, **kwargs: Any) -> Coursebook:
    """Opens (or, with `create`, creates) the store at `target`: a SQLite file path or a
    `postgresql://user@host:port/db[?schema=NAME]` URL.

    `clock`: the clock that stamps record times and judges `FUTURE_FACT` (default: the
    system's). `master_key`: the store's master key (default: `COURSEBOOK_MASTER_KEY`,
    else the key file `create` makes beside a SQLite store). `pool`: on PostgreSQL, the
    library's connection pool (the default: for a long-lived host or worker); `False`
    opens one plain connection when first needed, another only while it is busy, and
    nothing ahead of need (for a one-shot call, as the command line makes). Other
    keyword arguments go
    to `Coursebook` (e.g. `views="worker"`). `damaged_ok` opens a store whose settings
    record cannot be read (for `verify`, which names the damage). Raises
    `StoreUnavailable` when there is no store there, it cannot be reached, or its key
    is missing."""
    if master_key is not None:
        kwargs["master_key"] = master_key
    check_target(target, create=create)
    env = {**store_env(target, create=create, pool=pool), **(extra_env or {})}
    made: Path | None = None
    if "master_key" not in kwargs:
        kwargs["master_key"], made = master_key_for(target, env, create=create)
    try:
        app = Coursebook(env, clock=clock, **kwargs)
        try:
            initialised = app.is_initialised()
        except Tampered as error:  # the store's settings, changed: exit 3 like verify
            if not damaged_ok:
                app.close()
                raise error.naming("the store's settings") from None
            initialised = True
        except MapperDeserialisationError:
            if not damaged_ok:
                app.close()
                raise StoreUnavailable(DAMAGED) from None
            initialised = True
        if not create and not initialised:
            app.close()
            raise StoreUnavailable(f"no coursebook store at {safe_target(target)} "
                                   "(run: coursebook init)")
    except StoreUnavailable as error:
        forget_key_file(made)
        if made is not None:  # the store exists and a new key cannot open it
            raise missing_key(target) from None
        raise error from None
    except (PersistenceError, sqlite3.Error, OSError) as error:
        forget_key_file(made)
        raise StoreUnavailable(f"cannot open the store at {safe_target(target)}: "
                               f"{type(error).__name__}") from None
    return app


def rotate_master_key(target: str, *, new_key_file: str | None = None,
                      env: Mapping[str, str] | None = None,
                      clock: Clock | None = None) -> dict[str, Any]:
    """`coursebook keys rotate`: re-wraps every stored key of the store at `target` under
    a new master key (from `new_key_file`, else `COURSEBOOK_NEW_MASTER_KEY`, else a new
    random key when the store's key is in a key file), then puts the new key in the
    store's key file, if it uses one. Returns `{"keys", "key_file", "pending"}`. Raises
    `StoreUnavailable` (no store, a key that cannot be used) or `ValueError` (the key
    comes from `COURSEBOOK_MASTER_KEY` and no new one was given)."""
    import os

    settings = {**os.environ, **(env or {})}
    new = new_master_key(target, new_key_file, settings)
    try:
        app = open_store(target, clock=clock)
        try:
            result = app.rotate_master_key(new.key)
        finally:
            app.close()
    except BaseException:
        if new.staged is not None:  # nothing was re-wrapped: the old key stays the key
            new.staged.unlink(missing_ok=True)
        raise
    new.install()
    return {"keys": result["keys"],
            "key_file": None if new.key_file is None else str(new.key_file),
            "pending": result["pending"]}
