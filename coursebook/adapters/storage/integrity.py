"""Tamper evidence (docs/privacy.md): event tags, the seal chain, and `verify`.

Two layers, both keyed by the integrity key derived from the master key (kept outside the
store), so whoever can write the database cannot forge them:

1. **Event tags.** The mapper appends to every stored event an HMAC-SHA256 over its
   aggregate id, version, topic and stored bytes (the ciphertext of personal data, never
   the clear text, so erasure changes nothing). A changed byte, or state moved to another
   row, is found even before the chain below has reached the event.
2. **The seal chain.** A tracking catch-up (`catch_up`, run after each import, and before
   `verify`) walks the notification log in recording order and records, per event, two
   links: one chained across the whole log, one chained per aggregate (course,
   practitioner, patient). Its tracked position is a library `Tracking` record written in
   the same transaction, so writers never contend for the chain. A deleted, inserted or
   reordered event no longer matches the links; removing the newest events together with
   their links is caught by comparing with a head written earlier (`--seal` / `--against`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import itertools
import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any, Protocol, cast
from uuid import UUID

import attrs
import orjson
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    IntegrityError,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Tracking,
    Transcoder,
    find_id_convertor,
)

from coursebook.domain.schema import NewerRecord, record_class, upgrade
from coursebook.errors import Tampered

__all__ = ["SEAL_TABLE", "Link", "SealChain", "SealHead", "TaggingMapper", "catch_up",
           "checked_payload", "event_tag", "seal_table_for", "subject_name", "verify_store"]

SEAL_TABLE = "seal_chain"
SEAL_NAME = "seal_chain"  # the tracking record's application name
TAG_LEN = 32
GENESIS = bytes(32)
_PAGE = 500
_LOOKUP = 500  # aggregates whose last course MAC one query reads
_APPEND = 5000  # links a catch-up appends per transaction (one commit per import batch)


def _hex(value: UUID | str) -> str:
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex


@functools.lru_cache(maxsize=8)
def _event_mac(key: bytes) -> Any:
    """The keyed HMAC after its fixed prefix, copied for each tag (the key schedule and
    the prefix are computed once per key, not once per event)."""
    return hmac.new(key, b"coursebook event\0", hashlib.sha256)


def event_tag(key: bytes, originator_id: UUID | str, version: int, topic: str,
              payload: bytes) -> bytes:
    mac = _event_mac(key).copy()
    mac.update(f"{_hex(originator_id)}\0{version}\0{topic}\0".encode())
    mac.update(payload)
    digest: bytes = mac.digest()
    return digest


NOT_BYTES = "its state is not stored as bytes (the row was rewritten as text)"


def checked_payload(key: bytes, originator_id: UUID | str, version: int, topic: str,
                    state: Any, position: int | None = None) -> bytes:
    """A stored event's bytes without its tag, once the tag is found to match them and
    the row's id, version and topic; else `Tampered` naming the row. Every read that
    answers a question from stored events goes through here (or `TaggingMapper`)."""
    if not isinstance(state, bytes | bytearray | memoryview):
        raise Tampered(_hex_or_text(originator_id), version, position=position,
                       problem=NOT_BYTES)
    data = bytes(state)
    if len(data) <= TAG_LEN or not hmac.compare_digest(
            data[-TAG_LEN:], event_tag(key, originator_id, version, topic,
                                       data[:-TAG_LEN])):
        raise Tampered(_hex_or_text(originator_id), version, position=position)
    return data[:-TAG_LEN]


TEXT_AS_WRITTEN = functools.partial(bytes.decode, encoding="utf-8", errors="surrogateescape")
"""SQLite's text values as Python strings, even when they are not valid UTF-8: a state
rewritten as TEXT then reads as a `str` (a finding: `NOT_BYTES`) instead of failing the
whole read; valid text reads as it always did."""


def read_damaged_text(recorder: Any) -> None:
    """Makes the SQLite connections of `recorder`'s datastore read text with
    `TEXT_AS_WRITTEN` (other stores need nothing: PostgreSQL's bytea is never text)."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    if type(recorder).__module__ != "eventsourcing.sqlite" or pool is None:
        return
    create = pool._create_connection

    def creating() -> Any:
        connection = create()
        connection._sqlite_conn.text_factory = TEXT_AS_WRITTEN
        return connection

    pool._create_connection = creating
    for connection in [*pool._pool, *pool._in_use.values()]:
        connection._sqlite_conn.text_factory = TEXT_AS_WRITTEN


def as_stored_bytes(state: Any) -> bytes:
    """A stored state as bytes (one rewritten as text: the bytes it was read from)."""
    if isinstance(state, str):
        return state.encode("utf-8", "surrogateescape")
    return bytes(state)


def _hex_or_text(value: Any) -> str:
    try:
        return _hex(value)
    except ValueError:
        return "an unreadable id"


@functools.lru_cache(maxsize=16)
def _link_mac(key: bytes, scope: bytes) -> Any:
    """The keyed HMAC of a scope's links after their fixed prefix, copied for each link
    (as `_event_mac`)."""
    return hmac.new(key, b"coursebook seal " + scope + b"\0", hashlib.sha256)


def link_mac(key: bytes, previous: bytes, position: int | None, originator_id: str,
             version: int, tag: bytes) -> bytes:
    mac = _link_mac(key, b"log" if position is not None else b"aggregate").copy()
    mac.update(previous)
    mac.update(f"{position}\0{originator_id}\0{version}\0".encode())
    mac.update(tag)
    digest: bytes = mac.digest()
    return digest


class TaggingMapper(Mapper[UUID]):
    """The library's mapper, plus a tag on every stored event (stripped when read)."""

    def __init__(self, transcoder: Transcoder, compressor: Compressor | None = None,
                 cipher: Cipher | None = None, *, key: bytes) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self.key = key

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        tag = event_tag(self.key, stored.originator_id, stored.originator_version,
                        stored.topic, stored.state)
        return StoredEvent(originator_id=stored.originator_id,
                           originator_version=stored.originator_version,
                           topic=stored.topic, state=stored.state + tag)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """The library's `Mapper.to_domain_event`, except that the stored body is
        brought to its class's version by `domain.schema.upgrade` while it is still raw
        JSON (the same step every fast read path takes), and then its typed values are
        revived. The tag is checked first (`Tampered` when it does not match: nothing is
        read from a changed record); then a body of a version this code does not know
        raises `NewerRecord`, a topic it does not know `UnknownRecord`."""
        return self.decode_payload(stored_event, self.check(stored_event))

    def decode_payload(self, stored_event: StoredEvent, payload: bytes) -> Any:
        """The domain event of a stored event's untagged bytes (`to_domain_event` without
        the tag check: for naming what `verify` already reports as changed)."""
        cls = record_class(stored_event.topic)
        try:
            event_state = self.stored_body(payload, tagged=False)
            upgrade(cls, stored_event.topic, event_state)
            revive = getattr(self.transcoder, "revive", None)
            event_state = revive(event_state) if revive is not None \
                else self.transcoder.decode(orjson.dumps(event_state))
        except NewerRecord:
            raise
        except Exception as error:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic "
                f"'{stored_event.topic}', originator_id '{stored_event.originator_id}' "
                f"and originator_version {stored_event.originator_version}: "
                f"{type(error).__name__}") from error
        convert = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        event_state["originator_id"] = convert(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event

    def check(self, stored: Any) -> bytes:
        """The stored event's bytes without its tag, once checked (`checked_payload`)."""
        return checked_payload(self.key, stored.originator_id, stored.originator_version,
                               stored.topic, stored.state, getattr(stored, "id", None))

    def check_row(self, originator_id: UUID | str, version: int, topic: str, state: Any,
                  position: int | None = None) -> bytes:
        """`check` for a row read as plain values (the views' and time travel's reads)."""
        return checked_payload(self.key, originator_id, version, topic, state, position)

    def check_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """`check_row` for many rows `(position, originator_id, version, topic, state)`
        at once (a page of a view's catch-up): the same tags and the same `Tampered` for
        the first row that does not match, without the per-row costs (each aggregate's
        id formatted once, the payload hashed in place)."""
        copy, compare, key = _event_mac(self.key).copy, hmac.compare_digest, self.key
        hexes: dict[Any, str] = {}
        for position, originator_id, version, topic, state in rows:
            if type(state) is not bytes:  # anything unusual: the one-row check names it
                checked_payload(key, originator_id, version, topic, state, position)
                continue
            if len(state) <= TAG_LEN:
                raise Tampered(_hex_or_text(originator_id), version, position=position)
            ident = hexes.get(originator_id)
            if ident is None:
                ident = hexes[originator_id] = _hex(originator_id)
            mac = copy()
            mac.update(f"{ident}\0{version}\0{topic}\0".encode())
            mac.update(memoryview(state)[:-TAG_LEN])
            if not compare(state[-TAG_LEN:], mac.digest()):
                raise Tampered(_hex_or_text(originator_id), version, position=position)

    def stored_body(self, state: bytes, *, tagged: bool = True) -> dict[str, Any]:
        """A stored event's body as the JSON it was written as, at its stored version
        (tag, cipher and compression taken off; nothing upgraded or revived). The tag
        is not checked here: `check` does."""
        if tagged:
            state = state[:-TAG_LEN]
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        body: dict[str, Any] = orjson.loads(state)
        return body

    def reading_with(self, transcoder: Transcoder) -> TaggingMapper:
        """This mapper with another transcoder (same compressor, cipher and key)."""
        return TaggingMapper(transcoder, compressor=self.compressor, cipher=self.cipher,
                             key=self.key)

    @staticmethod
    def untagged(state: bytes) -> bytes:
        """The state as the library's mapper wrote it (the tag is not checked here: readers
        check it with `check_row` first)."""
        return state[:-TAG_LEN]


@attrs.frozen
class Link:
    position: int
    originator_id: str
    originator_version: int
    course_mac: bytes
    log_mac: bytes


@attrs.frozen
class SealHead:
    """The head of the chain, written by `verify --seal` to a file kept elsewhere."""

    position: int
    log_mac: str
    events: int

    def dumps(self, now: dt.datetime) -> bytes:
        return orjson.dumps({"position": self.position, "log_mac": self.log_mac,
                             "events": self.events,
                             "sealed_at": now.astimezone(dt.UTC).isoformat()},
                            option=orjson.OPT_INDENT_2)

    @classmethod
    def loads(cls, data: bytes) -> SealHead:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("position"), int) \
                or not isinstance(doc.get("log_mac"), str) \
                or not isinstance(doc.get("events"), int):
            raise ValueError("not a coursebook seal file")
        return cls(doc["position"], doc["log_mac"], doc["events"])


class SealTable(Protocol):
    def tracked(self) -> int: ...

    def link(self, position: int) -> Link | None: ...

    def last_position(self) -> int: ...

    def last_course_mac(self, originator_id: str) -> bytes | None: ...

    def last_course_macs(self, originator_ids: list[str]) -> dict[str, bytes]: ...

    def append(self, links: list[Link]) -> None: ...

    def links(self) -> Iterator[Link]: ...


class MemorySealTable:
    def __init__(self) -> None:
        self.rows: dict[int, Link] = {}
        self.position = 0

    def tracked(self) -> int:
        return self.position

    def link(self, position: int) -> Link | None:
        return self.rows.get(position)

    def last_position(self) -> int:
        return max(self.rows, default=0)

    def last_course_mac(self, originator_id: str) -> bytes | None:
        found = [k for k in self.rows.values() if k.originator_id == originator_id]
        return found[-1].course_mac if found else None

    def last_course_macs(self, originator_ids: list[str]) -> dict[str, bytes]:
        wanted, found = set(originator_ids), {}
        for k in self.rows.values():  # in position order: the last link wins
            if k.originator_id in wanted:
                found[k.originator_id] = k.course_mac
        return found

    def append(self, links: list[Link]) -> None:
        if any(k.position in self.rows for k in links):
            raise IntegrityError("already sealed")
        for k in links:
            self.rows[k.position] = k
        self.position = max(self.position, links[-1].position)

    def links(self) -> Iterator[Link]:
        yield from sorted(self.rows.values(), key=lambda k: k.position)


class _SQLSealTable:
    """The seal links in their own table, the position in the library's tracking table."""

    placeholder = "?"

    def __init__(self, datastore: Any, tracking: Any, *, create: bool) -> None:
        self.datastore = datastore
        self.tracking = tracking
        if create:
            tracking.create_table()
            with datastore.transaction(commit=True) as c:
                c.execute(self.create_statement)
                c.execute(f"CREATE INDEX IF NOT EXISTS {SEAL_TABLE}_aggregate "
                          f"ON {SEAL_TABLE} (originator_id, originator_version)")

    create_statement = ""

    def _row(self, row: Any) -> Link:
        return Link(int(row[0]), str(row[1]), int(row[2]), bytes(row[3]), bytes(row[4]))

    def tracked(self) -> int:
        return int(self.tracking.max_tracking_id(SEAL_NAME) or 0)

    def link(self, position: int) -> Link | None:
        p = self.placeholder
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, originator_id, originator_version, course_mac, "
                      f"log_mac FROM {SEAL_TABLE} WHERE position={p}", (position,))
            row = c.fetchone()
        return None if row is None else self._row(self._tuple(row))

    def last_position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT max(position) FROM {SEAL_TABLE}")
            row = c.fetchone()
        value = None if row is None else self._tuple(row)[0]
        return int(value or 0)

    def last_course_mac(self, originator_id: str) -> bytes | None:
        p = self.placeholder
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT course_mac FROM {SEAL_TABLE} WHERE originator_id={p} "
                      "ORDER BY originator_version DESC LIMIT 1", (originator_id,))
            row = c.fetchone()
        return None if row is None else bytes(self._tuple(row)[0])

    def last_course_macs(self, originator_ids: list[str]) -> dict[str, bytes]:
        """`last_course_mac` of many aggregates in one query per `_LOOKUP` of them."""
        found: dict[str, bytes] = {}
        p = self.placeholder
        for start in range(0, len(originator_ids), _LOOKUP):
            chunk = originator_ids[start:start + _LOOKUP]
            with self.datastore.transaction(commit=False) as c:
                c.execute(f"SELECT s.originator_id, s.course_mac FROM {SEAL_TABLE} s "
                          f"WHERE s.originator_id IN ({', '.join([p] * len(chunk))}) "
                          "AND s.originator_version = (SELECT max(t.originator_version) "
                          f"FROM {SEAL_TABLE} t WHERE t.originator_id = s.originator_id)",
                          chunk)
                for row in c.fetchall():
                    oid, mac = self._tuple(row)
                    found[str(oid)] = bytes(mac)
        return found

    def append(self, links: list[Link]) -> None:
        p = self.placeholder
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"INSERT INTO {SEAL_TABLE} (position, originator_id, "
                          f"originator_version, course_mac, log_mac) "
                          f"VALUES ({p}, {p}, {p}, {p}, {p})",
                          [(k.position, k.originator_id, k.originator_version, k.course_mac,
                            k.log_mac) for k in links])
            self.tracking._insert_tracking(c, Tracking(SEAL_NAME, links[-1].position))

    def links(self) -> Iterator[Link]:
        p = self.placeholder
        after = -1
        while True:
            with self.datastore.transaction(commit=False) as c:
                c.execute(f"SELECT position, originator_id, originator_version, course_mac, "
                          f"log_mac FROM {SEAL_TABLE} WHERE position>{p} "
                          f"ORDER BY position LIMIT {_PAGE}", (after,))
                rows = [self._row(self._tuple(r)) for r in c.fetchall()]
            if not rows:
                return
            yield from rows
            after = rows[-1].position

    @staticmethod
    def _tuple(row: Any) -> tuple[Any, ...]:
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class SQLiteSealTable(_SQLSealTable):
    create_statement = (f"CREATE TABLE IF NOT EXISTS {SEAL_TABLE} ("
                        "position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
                        "originator_version INTEGER NOT NULL, course_mac BLOB NOT NULL, "
                        "log_mac BLOB NOT NULL)")


class PostgresSealTable(_SQLSealTable):
    placeholder = "%s"
    create_statement = (f"CREATE TABLE IF NOT EXISTS {SEAL_TABLE} ("
                        "position bigint PRIMARY KEY, originator_id text NOT NULL, "
                        "originator_version bigint NOT NULL, course_mac bytea NOT NULL, "
                        "log_mac bytea NOT NULL)")


def seal_table_for(recorder: Any, *, create: bool) -> SealTable:
    """The seal table living in the same database as the application's recorder."""
    datastore = getattr(recorder, "datastore", None)
    module = type(recorder).__module__
    if datastore is not None and module == "eventsourcing.sqlite":
        from eventsourcing.sqlite import SQLiteTrackingRecorder

        return SQLiteSealTable(datastore, SQLiteTrackingRecorder(datastore), create=create)
    if datastore is not None and module == "eventsourcing.postgres":
        from eventsourcing.postgres import PostgresTrackingRecorder

        tracking = PostgresTrackingRecorder(datastore, tracking_table_name="seal_tracking")
        return PostgresSealTable(datastore, tracking, create=create)
    return MemorySealTable()


class ChainHead:
    """What this process last appended to the chain: its position, its log MAC and the
    last course MAC of the aggregates it sealed. Valid only while the chain's tracked
    position is still that position (nobody else appended since); a catch-up that finds
    otherwise starts over from the table."""

    __slots__ = ("broken", "courses", "log_mac", "position")

    COURSES = 10_000
    """Course MACs kept at most (then forgotten: they are read from the table again)."""

    def __init__(self) -> None:
        self.position: int | None = None
        self.log_mac = GENESIS
        self.courses: dict[str, bytes] = {}
        self.broken = False  # the last catch-up found the bookkeeping tampered with

    def forget(self) -> None:
        self.position, self.log_mac = None, GENESIS
        self.courses = {}


@attrs.frozen
class SealChain:
    """What the seal chain reads and writes: the store's events (recorder, mapper), the
    chain's own table, and the integrity key (derived from the master key); `head` is
    this process's memory of the chain's end (a cache, checked on every use)."""

    recorder: Any
    mapper: Any
    table: SealTable
    key: bytes
    head: ChainHead = attrs.field(factory=ChainHead, eq=False)


def _notifications(chain: SealChain, after: int) -> Iterator[Any]:
    while True:
        page = chain.recorder.select_notifications(start=after, limit=_PAGE,
                                                 inclusive_of_start=False)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].id


def bookkeeping_broken(chain: SealChain, tracked: int, head: Link | None,
                       own_from: int | None) -> bool:
    """Whether the chain cannot be extended from `tracked` without hiding a problem:
    its tracked link is missing, links lie beyond it (the tracking row was reset), or
    it is empty while the log is not, unless the caller's own write, starting at
    position `own_from`, is the first in the log (only a store's first write starts it).
    """
    if tracked:
        return head is None or chain.table.last_position() > tracked
    if chain.table.last_position():
        return True
    first = chain.recorder.select_notifications(start=1, limit=1)
    return bool(first) and (own_from is None or first[0].id < own_from)


def catch_up(chain: SealChain, *, own_from: int | None = None) -> int:
    """Seals every event recorded since the chain's tracked position; returns how many.

    A chain whose own bookkeeping was tampered with (`bookkeeping_broken`) is left as it
    is, for `verify` to report: it is never rebuilt. `own_from`: the first position of
    the caller's own write (a store's first write starts the chain).

    Safe to run from several processes: a catch-up that loses the race stops quietly
    (and forgets its cached head). When nobody else appended since this process did,
    the chain's end and the aggregates' last links come from `chain.head` instead of
    the table."""
    table: SealTable = chain.table
    key: bytes = chain.key
    cache = chain.head
    tracked = table.tracked()
    if cache.position != tracked:
        cache.forget()
        head = table.link(tracked) if tracked else None
        cache.broken = bookkeeping_broken(chain, tracked, head, own_from)
        if cache.broken:
            return 0  # never rebuilt silently: `verify` reports it
        cache.log_mac = head.log_mac if head is not None else GENESIS
        cache.position = tracked
    previous = cache.log_mac
    courses: dict[str, bytes] = {}  # this batch's, merged into the cache once appended
    sealed = 0
    batch: list[Link] = []

    def append() -> None:
        nonlocal sealed, batch
        table.append(batch)
        sealed += len(batch)
        if len(cache.courses) + len(courses) > ChainHead.COURSES:
            cache.courses = {}
        cache.courses.update(courses)
        cache.position, cache.log_mac = batch[-1].position, batch[-1].log_mac
        courses.clear()
        batch = []

    try:
        for n, before in _with_course_macs(table, cache, courses, _notifications(chain,
                                                                                  tracked)):
            oid = _hex(n.originator_id)
            tag = as_stored_bytes(n.state)[-TAG_LEN:]
            before = courses.get(oid) or cache.courses.get(oid) or before
            if before is None:  # known when its page was read, forgotten since
                before = table.last_course_mac(oid) or GENESIS
            link = Link(n.id, oid, n.originator_version,
                        link_mac(key, before, None, oid, n.originator_version, tag),
                        link_mac(key, previous, n.id, oid, n.originator_version, tag))
            courses[oid], previous = link.course_mac, link.log_mac
            batch.append(link)
            if len(batch) >= _APPEND:
                append()
        if batch:
            append()
    except IntegrityError:
        cache.forget()
        return sealed  # another process sealed these events first
    return sealed


def _with_course_macs(table: SealTable, cache: ChainHead, courses: dict[str, bytes],
                      notifications: Iterator[Any]) -> Iterator[tuple[Any, bytes | None]]:
    """Each notification with its aggregate's last course MAC in the table (GENESIS for
    none), read for a page of them at once: the aggregates neither this catch-up nor the
    cached head holds, with the first event of each in the page (None for the others:
    the caller has sealed their previous event, or reads it again)."""
    while True:
        page = list(itertools.islice(notifications, _PAGE))
        if not page:
            return
        unknown = list(dict.fromkeys(
            oid for oid in (_hex(n.originator_id) for n in page)
            if oid not in courses and oid not in cache.courses))
        stored: dict[str, bytes | None] = dict.fromkeys(unknown, GENESIS)
        if unknown:
            stored.update(table.last_course_macs(unknown))
        for n in page:  # only its first event may use what the table held
            yield n, stored.pop(_hex(n.originator_id), None)


def subject_name(chain: SealChain, originator_id: str) -> str | None:
    """A readable name for an aggregate, from its first event (None if unreadable)."""
    try:
        first = chain.recorder.select_events(UUID(originator_id), lte=1)
        try:
            event = chain.mapper.to_domain_event(first[0])
        except Tampered:  # verify reports it: its name is still the best hint there is
            event = chain.mapper.decode_payload(first[0], as_stored_bytes(
                first[0].state)[:-TAG_LEN])
    except Exception:  # deleted or tampered beyond decoding: the id still names it
        return None
    for attribute, label in (("course_id", "course"), ("practitioner_id", "practitioner"),
                             ("patient_ref", "patient"), ("command_id", "command")):
        value = getattr(event, attribute, None)
        if isinstance(value, str):
            return f"{label} {value}"
    return str(type(event).__qualname__.split(".")[0])


def _note_keys(n: Any, oid: str, patients: dict[str, str], erased: set[str],
               sealed_for: set[str]) -> None:
    """What the key table is checked against, noted from one stored event: the patients
    (and their refs), their erasures, and whose personal data is stored encrypted."""
    topic, state = n.topic, as_stored_bytes(n.state)
    if topic.endswith("PatientRecord.Registered") or topic.endswith("PatientRecord.Erased") \
            or b'"sealed":' in state:
        try:
            body = orjson.loads(state[:-TAG_LEN])
        except orjson.JSONDecodeError:
            return  # a library cipher or compressor, or tampering: reported elsewhere
        if not isinstance(body, dict):
            return
        if topic.endswith("PatientRecord.Registered"):
            patients[oid] = str(body.get("patient_ref"))
        elif topic.endswith("PatientRecord.Erased"):
            erased.add(oid)
        else:
            _sealed_refs(body, sealed_for)


def _sealed_refs(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        if "sealed" in value and isinstance(value.get("patient_ref"), str):
            found.add(value["patient_ref"])
            return
        for item in value.values():
            _sealed_refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _sealed_refs(item, found)


def verify_store(chain: SealChain, *, against: SealHead | None = None,
                 keyring: Any = None) -> dict[str, Any]:
    """Checks every stored event against its tag and the seal chain (catching up first).

    Returns `{"ok", "events", "other_records", "problems", "head"}`: `events` counts the
    facts (what the audit trail lists), `other_records` the records checked besides
    them (command receipts, personal-data records); problems are ordered by position,
    so the first one names the first bad place."""
    catch_up(chain)
    table: SealTable = chain.table
    key: bytes = chain.key
    tracked = table.tracked()
    last_link = table.last_position()
    head_of_log = chain.recorder.max_notification_id() or 0
    bookkeeping: list[dict[str, Any]] = []
    if last_link > tracked:
        bookkeeping.append({"position": tracked + 1, "subject": None, "version": None,
                            "problem": f"the seal chain's tracked position ({tracked}) is "
                                       f"behind its last link ({last_link}): its bookkeeping "
                                       "was reset, and new events are not sealed"})
    elif tracked > head_of_log:
        bookkeeping.append({"position": head_of_log + 1, "subject": None, "version": None,
                            "problem": f"the seal chain's tracked position ({tracked}) is "
                                       f"past the last stored event ({head_of_log}): events "
                                       "were removed, or its bookkeeping was changed"})
    elif tracked and table.link(tracked) is None:
        bookkeeping.append({"position": tracked, "subject": None, "version": None,
                            "problem": "the seal chain's tracked link is missing: its links "
                                       "were removed"})
    elif not last_link and head_of_log:
        bookkeeping.append({"position": 1, "subject": None, "version": None,
                            "problem": "the seal chain is missing: no stored event is "
                                       "sealed (it was emptied; only a store's first write "
                                       "starts it, so it is not rebuilt)"})
    tracked = max(tracked, last_link)
    pending = iter(table.links())
    next_link = next(pending, None)
    problems: list[dict[str, Any]] = []
    versions: dict[str, int] = {}
    course_prev: dict[str, bytes] = {}
    log_prev = GENESIS
    events = 0
    head_mac = GENESIS

    def problem(position: int, oid: str, version: int, text: str) -> None:
        problems.append({"position": position, "subject": oid, "version": version,
                         "problem": text})

    def resync(link: Link) -> None:
        nonlocal log_prev, head_mac
        log_prev = link.log_mac
        course_prev[link.originator_id] = link.course_mac
        head_mac = link.log_mac

    patients: dict[str, str] = {}
    erased: set[str] = set()
    sealed_for: set[str] = set()
    others = 0
    for n in _notifications(chain, 0):
        events += 1
        if _OTHER_RECORDS.search(n.topic):
            others += 1
        oid, version = _hex(n.originator_id), n.originator_version
        _note_keys(n, oid, patients, erased, sealed_for)
        while next_link is not None and next_link.position < n.id:
            problem(next_link.position, next_link.originator_id,
                    next_link.originator_version, "this sealed event was deleted")
            resync(next_link)
            next_link = next(pending, None)
        state = as_stored_bytes(n.state)
        tag = state[-TAG_LEN:]
        if not isinstance(n.state, bytes | bytearray | memoryview):
            problem(n.id, oid, version, f"the stored event was changed: {NOT_BYTES}")
        elif len(state) <= TAG_LEN or not hmac.compare_digest(
                tag, event_tag(key, oid, version, n.topic, state[:-TAG_LEN])):
            problem(n.id, oid, version, "the stored event was changed (its tag does not "
                                        "match its content)")
        expected = versions.get(oid, 0) + 1
        if version != expected:
            problem(n.id, oid, version, f"version {version} comes where version {expected} "
                                        "was due: events were deleted or reordered")
        versions[oid] = max(version, versions.get(oid, 0))
        link = next_link if next_link is not None and next_link.position == n.id else None
        if link is not None:
            next_link = next(pending, None)
            if (link.originator_id, link.originator_version) != (oid, version):
                problem(n.id, oid, version, "another event held this position when it was "
                                            "sealed: events were reordered or replaced")
            elif not hmac.compare_digest(link.log_mac, link_mac(
                    key, log_prev, n.id, oid, version, tag)) or not hmac.compare_digest(
                    link.course_mac, link_mac(key, course_prev.get(oid, GENESIS), None,
                                              oid, version, tag)):
                problem(n.id, oid, version, "the seal chain does not match this event: it "
                                            "was rewritten, or events before it removed")
            resync(link)
        elif n.id <= tracked:
            problem(n.id, oid, version, "this event is not in the seal chain: it was "
                                        "inserted or its seal removed")
    while next_link is not None:
        problem(next_link.position, next_link.originator_id, next_link.originator_version,
                "this sealed event was deleted")
        next_link = next(pending, None)
    if against is not None:
        sealed = table.link(against.position)
        if sealed is None or sealed.log_mac.hex() != against.log_mac:
            problems.append({"position": against.position, "subject": None, "version": None,
                             "problem": "the chain no longer holds the head sealed earlier: "
                                        "events recorded before that seal were removed or "
                                        "changed"})
    problems.extend(bookkeeping)
    if keyring is not None:
        problems.extend(verify_keys(chain, keyring, patients, erased, sealed_for))
    problems.sort(key=lambda p: p["position"])
    names: dict[str, str | None] = {}
    for p in problems:
        if p["subject"] is not None:
            oid = p["subject"]
            if oid not in names:
                names[oid] = subject_name(chain, oid)
            p["subject"] = names[oid] or oid
    return {"ok": not problems, "events": events - others, "other_records": others,
            "problems": problems, "head": SealHead(tracked, head_mac.hex(), events)}


#: The stored records that are not facts of the trail: what a command's receipt and a
#: patient's personal data are kept as (any of their topics' names).
_OTHER_RECORDS = re.compile(r":(CommandReceipt|PatientRecord)\.")


# -- the key table ---------------------------------------------------------------------------

def stored_keys(table: Any) -> list[tuple[str, bytes]] | None:
    """Every (key_id, wrapped key) of a SQL key table, the key-check row included; None
    for a table this code cannot list (the in-memory one)."""
    from coursebook.adapters.storage.keys import KEY_TABLE

    datastore = getattr(table, "datastore", None)
    if datastore is None:
        return None
    with datastore.transaction(commit=False) as c:
        c.execute(f"SELECT key_id, wrapped FROM {KEY_TABLE} ORDER BY key_id")
        rows = c.fetchall()
    return [(str(t[0]), bytes(t[1])) for t in (_SQLSealTable._tuple(r) for r in rows)]


def verify_keys(chain: SealChain, keyring: Any, patients: dict[str, str],
                erased: set[str], sealed_for: set[str]) -> list[dict[str, Any]]:
    """The key table against the log: every key opens with the master key under its own
    id (not swapped, not corrupted); every key belongs to a patient the log knows; every
    patient whose personal data the log holds encrypted still has a key, unless an
    `Erased` event accounts for it. `patients`: patient aggregate id (hex) to its ref;
    `erased`: ids of patients with an `Erased` event; `sealed_for`: refs of patients
    with encrypted personal data in the log."""
    from coursebook.adapters.storage.keys import CHECK_ID, ROOT_ID

    keys = stored_keys(keyring.table)
    if keys is None:
        return []
    problems: list[dict[str, Any]] = []

    def problem(key_id: str, text: str) -> None:
        subject = f"patient {patients[key_id]}" if key_id in patients else f"key {key_id}"
        problems.append({"position": 0, "subject": subject, "version": None,
                         "problem": text})

    present = set()
    for key_id, wrapped in keys:
        present.add(key_id)
        if not keyring.opens(key_id, wrapped):
            problem(key_id, "the key table's row does not open with the master key under "
                            "its own id: it was swapped or corrupted")
        elif key_id not in (CHECK_ID, ROOT_ID) and key_id not in patients:
            problem(key_id, "a key no patient in the log accounts for")
    if CHECK_ID not in present:
        problem(CHECK_ID, "the key-check row is missing")
    by_ref = {ref: key_id for key_id, ref in patients.items()}
    for ref in sorted(sealed_for):
        owner = by_ref.get(ref)
        if owner is not None and owner not in present and owner not in erased:
            problem(owner, "the patient's key is missing and no Erased event accounts for "
                            "it: it was deleted outside the engine")
    return problems


def key_fits_store(recorder: Any, integrity_key: bytes) -> bool:
    """Whether the master key (through its integrity key) is the one the store's first
    event was tagged with; True for a store without events. Binds the key-check row to
    the store: when that row is missing, a wrong master key may not write a new one."""
    first = recorder.select_notifications(start=1, limit=1)
    if not first:
        return True
    n = first[0]
    try:
        checked_payload(integrity_key, n.originator_id, n.originator_version, n.topic,
                        n.state)
    except Tampered:
        return False
    return True
