"""Records the store keeps about itself: command receipts and the clinic settings.

A `CommandReceipt` is saved in the same transaction as the events its command produced,
so "this command_id was applied" and the events themselves can never disagree, even when
two processes send the same command at once (the second insert fails on its version).

This module was `coursebook/domain/bookkeeping.py`, and stores hold that path in their
topics: see the `renamed` calls at the end (`domain/topics.py` keeps every old topic).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.domain import Aggregate

from coursebook.domain.ids import CLINIC_ID, command_uuid
from coursebook.domain.topics import renamed

__all__ = ["ClinicSettings", "CommandReceipt", "body_digest"]

_OLD_MODULE = "coursebook.domain.bookkeeping"


def body_digest(canonical: Any, key: bytes | None = None) -> str:
    """A digest of a command's canonical body: enough to tell "same body" apart, while the
    body itself (which may hold personal data) is never kept in the receipt. With `key`
    (the application passes one derived from the master key) it is an HMAC, so nobody
    holding only the store can confirm a guess of the personal data it covers."""
    data = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


class CommandReceipt(Aggregate):
    class Accepted(Aggregate.Created):
        TOPIC = f"{_OLD_MODULE}:CommandReceipt.Accepted"  # the stored topic: see below
        command_id: str
        command: str
        digest: str
        subject: str

        def apply(self, aggregate: Any) -> None:
            aggregate.command_id = self.command_id
            aggregate.command = self.command
            aggregate.digest = self.digest
            aggregate.subject = self.subject

    if TYPE_CHECKING:  # set by the events' apply(); not constructor arguments
        command_id: str
        command: str
        digest: str
        subject: str

    @classmethod
    def accept(cls, *, recorded_at: dt.datetime, command_id: str, command: str, digest: str,
               subject: str) -> CommandReceipt:
        return cls._create(cls.Accepted, id=command_uuid(command_id), timestamp=recorded_at,
                           command_id=command_id, command=command, digest=digest,
                           subject=subject)


class ClinicSettings(Aggregate):
    class Configured(Aggregate.Created):
        TOPIC = f"{_OLD_MODULE}:ClinicSettings.Configured"  # the stored topic: see below
        timezone: str

        def apply(self, aggregate: Any) -> None:
            aggregate.timezone = self.timezone

    class StoreMigrated(Aggregate.Event):
        """`coursebook migrate` ran (docs/schema-evolution.md): who ran it, when and why,
        and what it found and did. Changes no setting; the audit trail shows it."""

        at: dt.datetime
        actor: str
        reason: str | None
        coursebook_version: str
        from_versions: dict[str, int]
        """Event type -> the oldest version it is stored at, for the types read through
        upcasters."""
        to_versions: dict[str, int]
        """Event type -> the version those are read at (their class's)."""
        views_rebuilt: list[str]
        snapshots_replaced: int

        def apply(self, aggregate: Any) -> None:
            """Nothing to change: the fact is the record."""

    class CatalogueAdopted(Aggregate.Event):
        """The store adopts a catalogue from now on (`catalogue adopt`, or `init`): every
        course opened after it, in recording order, is under it for life. `content` is
        the catalogue's canonical content, so the store never needs the file again."""

        at: dt.datetime
        actor: str
        reason: str
        catalogue: dict[str, Any]
        """`{"name", "version", "digest"}`."""
        content: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            adopted = list(getattr(aggregate, "adopted", ()))
            adopted.append(self)
            aggregate.adopted = adopted

    if TYPE_CHECKING:
        timezone: str
        adopted: list[ClinicSettings.CatalogueAdopted]

    def adoptions(self) -> list[ClinicSettings.CatalogueAdopted]:
        """Every adoption, oldest first (none in a store made before catalogues)."""
        return list(getattr(self, "adopted", ()))

    def adopt_catalogue(self, *, recorded_at: dt.datetime, actor: str, reason: str,
                        catalogue: dict[str, Any], content: dict[str, Any]) -> None:
        self.trigger_event(self.CatalogueAdopted, timestamp=recorded_at, at=recorded_at,
                           actor=actor, reason=reason, catalogue=dict(catalogue),
                           content=content)

    @classmethod
    def configure(cls, *, recorded_at: dt.datetime, timezone: str) -> ClinicSettings:
        return cls._create(cls.Configured, id=CLINIC_ID, timestamp=recorded_at,
                           timezone=timezone)

    def record_migration(self, *, recorded_at: dt.datetime, actor: str, reason: str | None,
                         coursebook_version: str, from_versions: dict[str, int],
                         to_versions: dict[str, int], views_rebuilt: list[str],
                         snapshots_replaced: int) -> None:
        self.trigger_event(self.StoreMigrated, timestamp=recorded_at, at=recorded_at,
                           actor=actor, reason=reason, coursebook_version=coursebook_version,
                           from_versions=from_versions, to_versions=to_versions,
                           views_rebuilt=views_rebuilt, snapshots_replaced=snapshots_replaced)


# The topics of this module's classes as stores written before the move hold them.
#
# The event classes kept their old topic as `TOPIC` (eventsourcing's `construct_topic`
# prefers it) when the module moved, so every stored receipt and settings event has the
# same `topic` whichever version wrote it. That was the rule before `domain/topics.py`;
# it stays valid (the readers select every name of a class, `topics_of`, and here there
# is only one). The aggregate classes are only ever resolved from a topic (the
# `originator_topic` in a stored event's body, the `topic` in a snapshot's body): they
# take their new module's topic from now on. Every topic ever stored stays registered.
for _topic, _cls in (
        (f"{_OLD_MODULE}:CommandReceipt", CommandReceipt),
        (f"{_OLD_MODULE}:CommandReceipt.Accepted", CommandReceipt.Accepted),
        (f"{_OLD_MODULE}:ClinicSettings", ClinicSettings),
        (f"{_OLD_MODULE}:ClinicSettings.Configured", ClinicSettings.Configured)):
    renamed(_topic, _cls)
