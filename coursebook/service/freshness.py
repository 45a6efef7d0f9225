"""Which cached aggregates other writers have changed: one query per command.

The library's aggregate cache fast-forwards a cached aggregate on every load (a read
transaction per aggregate: the course, the actor, the patient), so that what other
processes recorded meanwhile is seen. Most of those reads find nothing new. Instead, a
command first asks the store for the head of the application log (one cheap query):

- if nothing was recorded since the position the cache is known to reflect, every cached
  aggregate is used as it is;
- otherwise the notifications in between (ids only matter, nothing is decoded) name the
  aggregates that changed; those are marked stale and fast-forwarded by the library when
  next loaded, the others are used as they are;
- after its own save, the process puts the aggregates it saved in the cache, and moves
  the position on if its events directly followed it.

What a command decides on is then exactly as fresh as with a fast-forward per aggregate:
as of a read made after the command began, with the same optimistic check at save time
(another writer's event at the same version makes the save fail). Thread-safe: marks are
numbered, so a mark made while an aggregate was being fast-forwarded is not cleared by
that fast-forward.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

__all__ = ["CacheFreshness"]

MAX_GAP = 5000
"""Beyond this many new notifications, the whole cache is dropped instead of read through."""


class CacheFreshness:
    """`on_erasure` runs when the log shows an event of `erasure_topics` (an erasure's
    topic and its old names, `domain.topics.topics_of`) recorded by
    another writer (or too many events to read through): every cached aggregate is
    dropped too, so no decrypted personal data of an erased patient stays cached."""

    def __init__(self, recorder: Any, cache: Any, *, erasure_topics: Iterable[str] = (),
                 on_erasure: Callable[[], None] | None = None) -> None:
        self._recorder = recorder
        self._cache = cache
        self._erasure_topics = frozenset(erasure_topics)
        self._on_erasure = on_erasure
        self._lock = threading.Lock()
        self._position: int | None = None
        self._stale: dict[UUID, int] = {}
        self._marks = 0
        self._restamped = threading.local()

    @property
    def position(self) -> int | None:
        """The log position the cache reflects (None before the first check)."""
        return self._position

    def check(self) -> None:
        """Before a command's lookups: mark what was recorded since the last check."""
        head = self._recorder.max_notification_id() or 0
        with self._lock:
            position = self._position
        if position == head:
            return
        if position is None or head < position or head - position > MAX_GAP:
            self.forget_all(head)
            if position is not None and self._on_erasure is not None:
                self._on_erasure()
            return
        notifications = self._recorder.select_notifications(
            start=position + 1, limit=head - position, stop=head)
        if self._erasure_topics and any(n.topic in self._erasure_topics
                                        for n in notifications):
            self.forget_all(head)
            if self._on_erasure is not None:
                self._on_erasure()
            return
        changed = {notification.originator_id for notification in notifications}
        with self._lock:
            for aggregate_id in changed:
                self._marks += 1
                self._stale[aggregate_id] = self._marks
            self._position = max(self._position or 0, head)

    def forget_all(self, head: int | None = None) -> None:
        """Drops every cached aggregate (e.g. after an erasure, or a long absence)."""
        with self._lock:
            for key in list(self._cache.cache):
                with contextlib.suppress(KeyError):
                    self._cache.get(key, evict=True)
            self._stale.clear()
            if head is not None:
                self._position = head

    def mark(self, aggregate_id: UUID) -> int | None:
        """None if a cached copy of the aggregate may be used as it is; else the mark to
        hand to `refreshed` once the library has fast-forwarded it (0 before the first
        check: nothing is known fresh yet, and there is no mark to clear)."""
        if self._position is None:
            return 0
        with self._lock:
            return self._stale.get(aggregate_id)

    def cached(self, aggregate_id: UUID) -> Any:
        """The cached aggregate; KeyError if there is none."""
        return self._cache.get(aggregate_id)

    def refreshed(self, aggregate_id: UUID, mark: int) -> None:
        with self._lock:
            if self._stale.get(aggregate_id) == mark:
                del self._stale[aggregate_id]

    def restamped(self, aggregate_ids: set[UUID]) -> None:
        """The aggregates whose events this thread just recorded with other stamps than
        it built them with: its next `saved` drops them instead of caching them."""
        self._restamped.ids = set(aggregate_ids)

    def saved(self, aggregates: Iterable[Any], notification_ids: Sequence[int]) -> None:
        """After this process recorded `aggregates` (their events got `notification_ids`):
        they go in the cache, and the position moves on if nothing came in between."""
        moved: set[UUID] = getattr(self._restamped, "ids", set())
        self._restamped.ids = set()
        for aggregate in aggregates:
            if aggregate.id in moved:  # built with stamps the store did not keep
                with contextlib.suppress(KeyError):
                    self._cache.get(aggregate.id, evict=True)
            else:
                self._cache.put(aggregate.id, aggregate)
        if not notification_ids:
            return
        ids = sorted(notification_ids)
        with self._lock:
            if (self._position is not None and ids[0] == self._position + 1
                    and ids[-1] - ids[0] + 1 == len(ids)):
                self._position = ids[-1]
