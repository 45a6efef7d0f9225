"""The compliance report's read of the store: the events it needs, from the whole log, in
recording order, with personal data left encrypted (the report never shows it, so it
neither fetches every patient's key nor decrypts)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from coursebook.adapters.storage.integrity import TaggingMapper
from coursebook.adapters.storage.transcoding import deferring_personal

__all__ = ["PAGE_SIZE", "read_report_events", "report_mapper"]

PAGE_SIZE = 2000


def report_mapper(mapper: Any) -> Any:
    """The application's mapper, except that personal data stays encrypted until read
    (`EncryptedPersonal`; anything that does read it gets it opened, or erased)."""
    if isinstance(mapper, TaggingMapper):
        return mapper.reading_with(deferring_personal(mapper.transcoder))
    return mapper  # pragma: no cover - the application always tags its events


def read_report_events(recorder: Any, mapper: Any, topics: Sequence[str], *,
                       page_size: int = PAGE_SIZE) -> Iterator[Any]:
    """The events of `topics`, from the whole log, in recording order."""
    to_domain_event = report_mapper(mapper).to_domain_event
    start = 1
    while True:
        page = recorder.select_notifications(start, page_size, topics=topics)
        for notification in page:
            yield to_domain_event(notification)
        if len(page) < page_size:
            return
        start = page[-1].id + 1
