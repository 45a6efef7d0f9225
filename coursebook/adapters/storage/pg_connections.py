"""Plain PostgreSQL connections for a one-shot call, in place of the library's pool.

The library's datastore takes its connections from a `psycopg_pool` pool: worker threads
that open a minimum of connections ahead of need and check them. A long-lived host or
worker gains from that; a command-line call that asks one question and exits pays for
it on every start. `PlainConnections` gives the datastore what it asks of its pool
(`open`, `connection()`, `close`, `kwargs`) with none of that: one connection, opened
when first used and configured as the library configures its own. Every `connection()`
still has a connection nobody else is using, as from the pool: a transaction begun
while another is open (nested, or on another thread) gets a second connection, so it
commits or rolls back on its own. Idle connections are reused until `close`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

__all__ = ["PlainConnections"]


class PlainConnections:
    """The part of a `psycopg_pool.ConnectionPool` the library's `PostgresDatastore` uses,
    made of plain connections (see the module's docstring)."""

    def __init__(self, pool: Any, configure: Callable[[Any], None]) -> None:
        # The pool's own settings (the same dict: options added to it later apply).
        self.kwargs: dict[str, Any] = pool.kwargs
        self.conninfo: str = pool.conninfo if isinstance(pool.conninfo, str) else ""
        self.connection_class: Any = pool.connection_class
        self.timeout: float = pool.timeout
        self.get_password_func: Callable[[], str] | None = getattr(
            pool, "get_password_func", None)
        self._configure = configure
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Nothing to open ahead of need: a connection is made when first asked for
        (and, as with the pool, none once closed)."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _take(self) -> Any:
        with self._lock:
            if self._closed:
                raise psycopg.OperationalError("the store's connections are closed")
            if self._idle:
                return self._idle.pop()
        kwargs = dict(self.kwargs)
        if self.get_password_func is not None:
            kwargs["password"] = self.get_password_func()
        kwargs["connect_timeout"] = max(round(self.timeout), 1)
        conn = self.connection_class.connect(self.conninfo, **kwargs)
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _give_back(self, conn: Any) -> None:
        """Keeps a connection for the next use if it is sound and idle (a transaction
        left open is rolled back, as the pool does); closes it otherwise."""
        status = conn.info.transaction_status
        if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                conn.rollback()
                status = conn.info.transaction_status
            except psycopg.Error:
                status = TransactionStatus.UNKNOWN
        with self._lock:
            if status == TransactionStatus.IDLE and not self._closed and not conn.closed:
                self._idle.append(conn)
                return
        with suppress(psycopg.Error):
            conn.close()

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(psycopg.Error):
                conn.close()

    def __enter__(self) -> PlainConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
