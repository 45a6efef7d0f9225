"""A read model as the projections layer sees it: a `ViewProjection` turns pages of
stored events into row writes for its view's tables.

The view's storage (SQLite or PostgreSQL tables, tracking, compare-and-set commits) and
the runner that feeds it pages live in the storage adapters and the service; a
projection sees only the narrow interfaces below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

__all__ = ["EventSource", "Progress", "Row", "ViewProjection", "ViewTables", "Write"]

Row = tuple[int, Any, int, str, bytes]
"""A stored event as a view reads it: (notification id, originator id as stored, originator
version, topic, state). Plain tuples straight from the events table, no objects."""

Write = tuple[str, Sequence[Sequence[Any]]]
"""One statement (with `?` placeholders) and the rows to `executemany` it with."""

Progress = Callable[[int, int], None]
"""Called after each committed page with (position, head of the log)."""


class EventSource(Protocol):
    """What a projection may read of the application besides its pages: the clinic's
    zone, the mapper (to decode a stored event) and the event store (to read an
    aggregate's earlier events)."""

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def mapper(self) -> Any: ...

    @property
    def events(self) -> Any: ...


class ViewTables(Protocol):
    """What a projection may ask of its view besides writes: a read-only query."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class CatchingUp(Protocol):
    def catch_up(self, *, until: int | None = None) -> int: ...


class ViewProjection(Projection[Any], ABC):
    """Turns pages of notifications into writes to its view.

    `name` names the view (`coursebook projections rebuild NAME`); `topics` are the event
    topics it reads; `tables` and `ddl` its tables. `page(rows, bodies)` must be a pure
    function of the events it is given and of what earlier pages committed; it may keep
    caches, which `forget()` drops whenever the runner's view of the position is no
    longer the one its caches were built on (another worker moved it, or a rebuild).
    `decode(topic, state)` turns a stored state into a plain dict at its class's current
    version (`domain.schema.upgrade`); `stored_json` gives the JSON the transcoder wrote
    (None when a cipher or compressor stands between): usable as is only for a body
    stored at its class's current version.
    """

    tables: tuple[str, ...] = ()
    ddl: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()
    """Secondary indexes (named in `ddl`) a rebuild drops and creates again at the end."""
    format_version = 1
    """The shape of the view's rows: raised whenever it changes, so that views written
    by another version of coursebook are rebuilt from the events when opened."""

    def __init__(self, view: Any, app: EventSource, *,
                 decode: Callable[[str, bytes], dict[str, Any]],
                 stored_json: Callable[[bytes], bytes] | None) -> None:
        super().__init__(view)
        self.tables_view: ViewTables = view
        self.app = app
        self.decode = decode
        self.stored_json = stored_json
        self.runner: CatchingUp | None = None

    @abstractmethod
    def page(self, rows: Sequence[Row],
             bodies: Sequence[dict[str, Any]] | None = None) -> list[Write]:
        """The writes that apply these stored events (in log order) to the view.
        `bodies`, when given, holds each row's state already decoded by `decode` (shared
        with other views: read, never changed)."""

    def forget(self) -> None:
        """Drops in-memory caches built from earlier pages."""

    def join(self, before: Sequence[ViewProjection]) -> None:
        """A rebuild of several views in one pass begins: `before` are the projections
        that apply each page before this one, in that order. A projection may reuse
        what one of them worked out from the same page, until `leave()`."""

    def leave(self) -> None:
        """The shared pass is over: work no longer shared, caches its own again."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's per-event entry point (e.g. from a `ProjectionRunner`): catch the
        view up to that event, in pages, with compare-and-set, through the runner the
        service attached (`service.read_models`)."""
        if self.runner is None:
            raise RuntimeError(f"the {self.name} view has no runner: open it through "
                               "coursebook.service.read_models")
        self.runner.catch_up(until=tracking.notification_id)
