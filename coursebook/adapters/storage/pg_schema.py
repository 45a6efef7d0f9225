"""eventsourcing's PostgreSQL persistence for a store kept in a schema of its own, with
the library's connection pool or, for a one-shot call, plain connections.

The library qualifies its own statements with `POSTGRES_SCHEMA`; the tables coursebook
adds beside the events (the views and their tracking) are named without a schema, so
every connection of the store starts with `search_path` set to the store's schema: they
land, and are found, beside the events they derive from. With `POSTGRES_POOL=n` (set
by `open_store(pool=False)`) the datastore takes plain connections
(`pg_connections.PlainConnections`) instead of opening a pool.
"""

from __future__ import annotations

from typing import Any

from eventsourcing import postgres
from eventsourcing.utils import strtobool

from coursebook.adapters.storage.pg_connections import PlainConnections

__all__ = ["POOL_ENV", "PostgresFactory"]

POOL_ENV = "POSTGRES_POOL"
"""`n`: plain connections for a one-shot call; anything else (or unset): the pool."""


class PostgresFactory(postgres.PostgresFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        datastore = self.datastore
        schema = datastore.schema
        if schema != "public":
            # The pool is not open yet: every connection it makes gets the option.
            kwargs: Any = datastore.pool.kwargs
            kwargs["options"] = f"-c search_path={schema}"
        if not strtobool(self.env.get(POOL_ENV) or "y"):
            plain: Any = PlainConnections(datastore.pool, datastore.after_connect_func())
            datastore.pool = plain
