"""The application's wiring: the eventsourcing `Application` with coursebook's storage
(tagging mapper, per-patient encryption, snapshots), its clock, keys and clinic zone.

The service's other parts (commanding, batches, command methods, queries) build on it;
`Coursebook` in `application.py` puts them together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from typing import Any, ClassVar, cast
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    EventStore,
    Mapper,
    Recording,
    Transcoder,
)

from coursebook.adapters.storage.integrity import (
    SealChain,
    TaggingMapper,
    key_fits_store,
    read_damaged_text,
    seal_table_for,
)
from coursebook.adapters.storage.keys import (
    CHECK_ID,
    MASTER_KEY_ENV,
    Keyring,
    MasterKey,
    configured_master_key,
    missing_key,
)
from coursebook.adapters.storage.keys import table_for as key_table_for
from coursebook.adapters.storage.record_time import (
    KnownHorizon,
    StampingEventStore,
    horizon_for,
)
from coursebook.adapters.storage.snapshots import (
    SNAPSHOT_INTERVAL,
    SnapshotStore,
    snapshot_transcodings,
)
from coursebook.adapters.storage.time_travel import CourseReader
from coursebook.adapters.storage.transcoding import OrjsonTranscoder, default_transcodings
from coursebook.clock import Clock, SystemClock
from coursebook.domain.commands import (
    invalid,
)
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.ids import (
    CLINIC_ID,
)
from coursebook.domain.patient import PatientRecord
from coursebook.domain.protocols import (
    NEWEST_DEFAULT,
    SHIPPED,
    Catalogue,
    CatalogueError,
    load_catalogue,
    shipped_catalogue,
)
from coursebook.domain.store_records import ClinicSettings
from coursebook.domain.topics import topics_of
from coursebook.errors import Code, Rejected, StoreUnavailable
from coursebook.projections.course_view import iso
from coursebook.service.freshness import CacheFreshness

__all__ = ["Wiring"]


class Wiring(Application[UUID]):
    """The eventsourcing application coursebook runs on, and its storage."""

    name = "coursebook"

    CACHE = {"AGGREGATE_CACHE_MAXSIZE": "2000"}
    """The library's aggregate cache: a command loads its course, actor and patient from
    memory, fast-forwarded with the events stored since (so other writers are seen), and
    gets a deep copy (so a refused or failed command never changes the cached one)."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        TreatmentCourse: SNAPSHOT_INTERVAL}
    """A course is snapshotted every `SNAPSHOT_INTERVAL` versions (adapters/snapshots.py);
    loads and time-travel questions start from the latest usable snapshot."""

    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Clock | None = None,
                 catalogue: Catalogue | None = None, master_key: MasterKey | None = None,
                 ) -> None:
        """`master_key`: the store's master key; else `COURSEBOOK_MASTER_KEY` from `env` or
        the process environment; a store kept only in memory makes a passing one."""
        self.clock: Clock = clock or SystemClock()
        self.initial_catalogue = catalogue
        """What `initialise` adopts for a new store when it names none (None: the newest
        shipped `default@N`)."""
        self._catalogues: dict[str, Catalogue] = {}
        self._zone: ZoneInfo | None = None
        self._closing: list[Callable[[], None]] = []
        self.closed = False
        self.keyring = Keyring(master_key or _master_key(env))
        super().__init__({**self.CACHE, **(env or {})})
        create = self.env.get("CREATE_TABLE", "y").lower() in ("y", "yes", "true", "1", "on")
        read_damaged_text(self.recorder)
        key_table = key_table_for(self.recorder, create=create)
        if key_table.get(CHECK_ID) is None and not key_fits_store(self.recorder,
                                                                  self.integrity_key):
            raise StoreUnavailable("the master key does not open this store (its key-check "
                                   "row is missing, and the stored events were tagged with "
                                   "another key)")
        self.keyring.attach(key_table)
        self.known_horizon = KnownHorizon(horizon_for(self.recorder))
        """Settled before answering `--known-at` (adapters/storage/record_time.py)."""
        cast(StampingEventStore, self.events).horizon = self.known_horizon.table
        # After a rotation the integrity key comes from the key table's root.
        cast(Any, self.mapper).key = self.integrity_key
        self._erasures_pending = bool(self.keyring.pending_erasures())
        if self._erasures_pending:  # an earlier erasure could not finish: try now
            self._erasures_pending = self.keyring.try_complete_erasures()
        self.course_reader = CourseReader(self.recorder, self.mapper, self.snapshots,
                                          SNAPSHOT_INTERVAL)
        self.seal_chain = SealChain(self.recorder, self.mapper,
                                    seal_table_for(self.recorder, create=create),
                                    self.integrity_key)
        cache = self.repository.cache
        self._freshness = None if cache is None else CacheFreshness(
            self.recorder, cache, erasure_topics=topics_of(PatientRecord.Erased),
            on_erasure=self.keyring.forget_cached)

    @property
    def integrity_key(self) -> bytes:
        """The HMAC key of event tags and the seal chain (derived, never stored)."""
        return self.keyring.master.integrity

    def construct_mapper(self) -> Mapper[UUID]:
        return TaggingMapper(self.construct_transcoder(), compressor=self.factory.compressor(),
                             cipher=self.factory.cipher(), key=self.integrity_key)

    def construct_event_store(self) -> EventStore[UUID]:
        """Inserts through the known horizon (attached once the store is open), which
        settles each event's record time under the write lock."""
        return StampingEventStore(self.mapper, self.recorder)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """The library's `_record`. An aggregate whose events were stamped again at
        commit (`record_time.restamped`) is not kept in the cache as this process built
        it: the next load reads the recorded stamps."""
        events: list[Any] = list(processing_event.events)
        stamps = [event.timestamp for event in events]
        recordings = super()._record(processing_event)
        moved = {event.originator_id for event, stamp in zip(events, stamps, strict=True)
                 if event.timestamp != stamp}
        if self._freshness is not None:
            self._freshness.restamped(moved)
        return recordings

    def settle_known_at(self, known_at: dt.datetime | None) -> None:
        """Before answering about `known_at`: once that moment is past, no write stamped
        at or before it can commit after the answer (the answer is final)."""
        if known_at is not None:
            self.known_horizon.settle(known_at, self.clock.now())

    def on_close(self, callback: Callable[[], None]) -> None:
        """Runs `callback` when the application closes (the read models' connections)."""
        self._closing.append(callback)

    def close(self) -> None:
        self.closed = True
        while self._closing:
            self._closing.pop()()
        super().close()

    def construct_transcoder(self) -> Transcoder:
        transcoder = OrjsonTranscoder()
        for transcoding in self.transcodings():
            transcoder.register(transcoding)
        return transcoder

    def transcodings(self) -> list[Any]:
        """The value types events (and snapshots) may hold; personal data is encrypted
        per patient."""
        return [*default_transcodings(self.keyring), *snapshot_transcodings()]

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None,
                      projector_func: Any = None) -> None:
        """The library's `take_snapshot`, with the course's latest segment floor: the
        earliest valid time of the events since the interval before (`--as-of` skips
        a segment whose floor is after the moment asked about)."""
        aggregate: Any = self.repository.get(aggregate_id, version=version,
                                             projector_func=projector_func or project_aggregate)
        snapshot_class: Any = getattr(type(aggregate), "Snapshot", self.snapshot_class)
        snapshot = snapshot_class.take(aggregate)
        interval = self.snapshotting_intervals.get(type(aggregate))
        if isinstance(aggregate, TreatmentCourse) and interval:
            start = max(0, aggregate.version - interval)
            events: list[Any] = list(self.events.get(aggregate_id, gt=start,
                                                     lte=aggregate.version))
            floor = min(e.at for e in events)
            # First in the body, so that `snapshot_times` reads it from the lead.
            rest = {k: v for k, v in snapshot.state.items() if k != "segment"}
            snapshot.state.clear()
            snapshot.state.update({"segment": [start, floor], **rest})
        assert self.snapshots is not None
        self.snapshots.put([snapshot])

    def construct_snapshot_store(self) -> SnapshotStore:
        """The library's snapshot store, ignoring any snapshot that is not intact. Its
        table is made on opening a store created before snapshots existed."""
        recorder: Any = self.factory.aggregate_recorder(purpose="snapshots")
        if hasattr(recorder, "create_table"):  # the SQL ones: IF NOT EXISTS
            recorder.create_table()
        return SnapshotStore(mapper=self.mapper, recorder=recorder)

    # -- loading ---------------------------------------------------------------------
    def _load(self, cls: type[Any], aggregate_id: UUID, *, copy: bool) -> Any:
        """The cached aggregate if nobody changed it since (`freshness`), else the
        library's load (fast-forwarded, or from the store); a deep copy if `copy`."""
        freshness = self._freshness
        mark = None if freshness is None else freshness.mark(aggregate_id)
        if mark is None and freshness is not None:
            try:
                cached = freshness.cached(aggregate_id)
            except KeyError:
                pass
            else:
                if isinstance(cached, cls):
                    return deepcopy(cached) if copy else cached
        try:
            aggregate: Any = self.repository.get(aggregate_id, projector_func=project_aggregate,
                                                 deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None
        if mark and freshness is not None:
            freshness.refreshed(aggregate_id, mark)
        return aggregate if isinstance(aggregate, cls) else None

    # -- the store's clinic settings -----------------------------------------------------
    def initialise(self, timezone: str | None = None,
                   catalogue: str | Catalogue | None = None) -> str:
        """Creates the clinic settings once, adopting `catalogue` (a reference such as
        `default@2`, a TOML file's path, or a `Catalogue`; default: the one given to the
        constructor, else the newest shipped `default@N`); returns the zone. On an
        existing store it changes nothing: another zone, or another catalogue than the
        one in force, is `INVALID`."""
        settings = self._load(ClinicSettings, CLINIC_ID, copy=False)
        if settings is not None:
            if timezone is not None and timezone != settings.timezone:
                raise Rejected(Code.INVALID, f"timezone: the store's zone is "
                               f"{settings.timezone} and cannot change", "timezone")
            if catalogue is not None:
                wanted, in_force = self._catalogue(catalogue), self.catalogue_in_force()
                if (wanted.ref, wanted.digest) != (in_force.ref, in_force.digest):
                    raise invalid("catalogue", f"the store is under {in_force.ref}; adopt "
                                  "another catalogue with catalogue adopt")
            return str(settings.timezone)
        name = timezone or "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid("timezone", "is not an IANA time zone name") from None
        chosen = self._catalogue(catalogue if catalogue is not None
                                 else self.initial_catalogue or NEWEST_DEFAULT)
        self._check_not_changed(chosen, [])
        now = self.clock.now()
        settings = ClinicSettings.configure(recorded_at=now, timezone=name)
        settings.adopt_catalogue(recorded_at=now, actor="coursebook init",
                                 reason="adopted when the store was created",
                                 catalogue=chosen.identity(), content=chosen.content)
        self._save_settings(settings)
        return name

    def _save_settings(self, settings: ClinicSettings) -> None:
        """Saves the clinic settings and keeps this process's cached copy current."""
        recordings = self.save(settings)
        if self._freshness is not None:
            self._freshness.saved([settings], [r.notification.id for r in recordings])

    # -- catalogues --------------------------------------------------------------------
    def _catalogue(self, ref: str | Catalogue) -> Catalogue:
        """A catalogue by reference or path; a bad one is `INVALID` naming its field."""
        if isinstance(ref, Catalogue):
            return ref
        try:
            return load_catalogue(ref)
        except CatalogueError as error:
            field = f"catalogue.{error.field}" if error.field else "catalogue"
            raise Rejected(Code.INVALID, f"{field}: {error.message}", field) from None

    def _settings(self) -> ClinicSettings:
        settings: ClinicSettings | None = self._load(ClinicSettings, CLINIC_ID, copy=False)
        if settings is None:
            raise StoreUnavailable("the store holds no clinic settings (run init)")
        return settings

    def _stored_catalogue(self, content: dict[str, Any], digest: str) -> Catalogue:
        found = self._catalogues.get(digest)
        if found is None:
            found = self._catalogues[digest] = Catalogue(content)
        return found

    def catalogue_in_force(self) -> Catalogue:
        """The catalogue a course opened now is under: the latest adopted, or `default@1`
        in a store made before catalogues."""
        adoptions = self._settings().adoptions()
        if not adoptions:
            legacy = shipped_catalogue("default@1")
            assert legacy is not None
            return legacy
        last = adoptions[-1]
        return self._stored_catalogue(last.content, last.catalogue["digest"])

    def _adopted_at(self, catalogue: Catalogue) -> Any:
        settings = self._settings()
        for adoption in reversed(settings.adoptions()):
            if adoption.catalogue["digest"] == catalogue.digest:
                return iso(adoption.at)
        return iso(settings.created_on)

    def _check_not_changed(self, wanted: Catalogue, adoptions: list[Any]) -> None:
        """A catalogue is never changed under its own name and version: not one adopted
        before, nor a shipped one."""
        digests = {(a.catalogue["name"], a.catalogue["version"]): a.catalogue["digest"]
                   for a in adoptions}
        shipped = shipped_catalogue(wanted.ref) if wanted.ref in SHIPPED else None
        if shipped is not None:
            digests.setdefault((shipped.name, shipped.version), shipped.digest)
        known = digests.get((wanted.name, wanted.version))
        if known is not None and known != wanted.digest:
            raise invalid("catalogue", f"{wanted.ref} was adopted before (or is shipped) "
                          "with other content: give a changed catalogue a new version")

    def catalogue(self, ref: str | None = None) -> dict[str, Any]:
        """`{"name", "version", "digest", "adopted_at", "protocols", "safety"}` of the
        catalogue in force, or of `ref` (`adopted_at` null when it is not the one in
        force)."""
        in_force = self.catalogue_in_force()
        chosen = in_force if ref is None else self._catalogue(ref)
        adopted_at = (self._adopted_at(chosen) if chosen.digest == in_force.digest
                      else None)
        return {**chosen.identity(), "adopted_at": adopted_at,
                "protocols": chosen.content["protocols"],
                "safety": dict(chosen.content["safety"])}

    def adopt_catalogue(self, ref: str | Catalogue, *, actor: str,
                        reason: str) -> dict[str, Any]:
        """Records that the store adopts `ref` from now on (`ClinicSettings.
        CatalogueAdopted`, in the audit trail with subject `catalogue`), and returns
        `{"name", "version", "digest", "adopted_at"}`. The catalogue already in force
        changes nothing. `INVALID` (naming the field) for an empty actor, a reason of
        fewer than 10 characters, a catalogue that is not valid, or a `name@version`
        adopted before with other content."""
        if not isinstance(actor, str) or not actor.strip():
            raise invalid("actor", "must be a non-empty id")
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            raise invalid("reason", "needs at least 10 characters")
        wanted = self._catalogue(ref)
        settings = self._load(ClinicSettings, CLINIC_ID, copy=True)
        if settings is None:
            raise StoreUnavailable("the store holds no clinic settings (run init)")
        in_force = self.catalogue_in_force()
        if (wanted.ref, wanted.digest) != (in_force.ref, in_force.digest):
            self._check_not_changed(wanted, settings.adoptions())
            settings.adopt_catalogue(recorded_at=self.clock.now(), actor=actor.strip(),
                                     reason=reason.strip(), catalogue=wanted.identity(),
                                     content=wanted.content)
            self._save_settings(settings)
        return {**wanted.identity(), "adopted_at": self._adopted_at(wanted)}

    @property
    def zone(self) -> ZoneInfo:
        if self._zone is None:
            settings = self._load(ClinicSettings, CLINIC_ID, copy=False)
            if settings is None:
                raise StoreUnavailable("the store holds no clinic settings (run init)")
            self._zone = ZoneInfo(settings.timezone)
        return self._zone

    def is_initialised(self) -> bool:
        return self._load(ClinicSettings, CLINIC_ID, copy=False) is not None

    @property
    def store_identity(self) -> str:
        """A stable name of this store (16 hex digits), the same in its backups and
        different for every `init`: derived from the moment its clinic settings were
        recorded. Exports use it to keep their identifiers apart between clinics."""
        settings = self._load(ClinicSettings, CLINIC_ID, copy=False)
        if settings is None:
            raise StoreUnavailable("the store holds no clinic settings (run init)")
        seed = f"{settings.created_on.isoformat()}|{settings.timezone}".encode()
        return hashlib.sha256(seed).hexdigest()[:16]


def _master_key(env: Mapping[str, str] | None) -> MasterKey:
    """The master key for an application built from an environment alone (as the
    library's runners do): `COURSEBOOK_MASTER_KEY`, else the target's key file."""
    settings = {**os.environ, **(env or {})}
    module = settings.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    target: str | None = None
    if module == "eventsourcing.sqlite" and settings.get("SQLITE_DBNAME"):
        target = settings["SQLITE_DBNAME"]
    elif module.partition(":")[0] in {"eventsourcing.postgres",
                                      "coursebook.adapters.storage.pg_schema"}:
        schema = settings.get("POSTGRES_SCHEMA") or "public"
        target = (f"postgresql://{settings.get('POSTGRES_HOST') or '127.0.0.1'}:"
                  f"{settings.get('POSTGRES_PORT') or 5432}/"
                  f"{settings.get('POSTGRES_DBNAME') or 'postgres'}"
                  + ("" if schema == "public" else f"?schema={schema}"))
    found = configured_master_key(target, settings)
    if found is not None:
        return found
    if target is not None:
        raise missing_key(target)
    if module == "eventsourcing.popo":
        return MasterKey.ephemeral()
    raise StoreUnavailable(f"no master key: set {MASTER_KEY_ENV}")


def project_aggregate(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its per-event runtime check against a
    `Protocol` (an `isinstance` that inspects the protocol's members every time: about
    half the cost of loading an aggregate). Our events are all `Aggregate` events."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate

