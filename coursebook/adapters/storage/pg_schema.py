"""eventsourcing's PostgreSQL persistence for a store kept in a schema of its own.

The library qualifies its own statements with `POSTGRES_SCHEMA`; the tables coursebook
adds beside the events (the views and their tracking) are named without a schema, so
every connection of the store's pool starts with `search_path` set to the store's
schema: they land, and are found, beside the events they derive from.
"""

from __future__ import annotations

from typing import Any

from eventsourcing import postgres

__all__ = ["PostgresFactory"]


class PostgresFactory(postgres.PostgresFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        schema = self.datastore.schema
        if schema != "public":
            # The pool is not open yet: every connection it makes gets the option.
            kwargs: Any = self.datastore.pool.kwargs
            kwargs["options"] = f"-c search_path={schema}"
