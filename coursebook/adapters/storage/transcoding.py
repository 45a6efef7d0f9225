"""Event bodies to bytes and back: orjson with the library's `Transcoding` extension point.

The library's `JSONTranscoder` matches types exactly and uses the slower `json` module;
this one looks types up by class (falling back to `isinstance`, so freezegun's
`FakeDatetime` stores as a datetime) and encodes with orjson. Every value type in an
event has a registered transcoding, so nothing is ever pickled or guessed.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import Transcoder, Transcoding, TranscodingNotRegisteredError

from coursebook.domain.values import Personal, Phase, Product, Protocol, SpacingRule

if TYPE_CHECKING:
    from coursebook.adapters.storage.keys import Keyring

__all__ = [
    "EncryptedPersonal",
    "Interned",
    "OrjsonTranscoder",
    "PersonalEncrypted",
    "PersonalInClear",
    "default_transcodings",
    "deferring_personal",
]

_TYPE, _DATA = "_type_", "_data_"
_CONTAINERS_OR_UUID = frozenset({dict, list, tuple, uuid.UUID})


def _not_serializable(obj: Any) -> str:  # the library's `JSONTranscoder` wording
    return (f"Object of type {type(obj)} is not serializable. Please define and register "
            "a custom transcoding for this type.")


def _not_deserializable(name: Any) -> str:
    return (f"Data serialized with name {name!r} is not deserializable. Please register a "
            "custom transcoding for this type.")


class OrjsonTranscoder(Transcoder):
    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        self.decoders: dict[str, Callable[[Any], Any]] = {}

    def register(self, transcoding: Transcoding) -> None:
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding
        # A transcoding may name a faster equivalent of its `decode` (a builtin).
        self.decoders[transcoding.name] = getattr(transcoding, "decoder", transcoding.decode)

    def _transcoding_for(self, obj: Any) -> Transcoding:
        found = self.types.get(type(obj))
        if found is not None:
            return found
        for cls, transcoding in self.types.items():
            if isinstance(obj, cls):
                self.types[type(obj)] = transcoding
                return transcoding
        raise TranscodingNotRegisteredError(_not_serializable(obj))

    def _default(self, obj: Any) -> Any:
        transcoding = self._transcoding_for(obj)
        return {_TYPE: transcoding.name, _DATA: self._uuids(transcoding.encode(obj))}

    def _uuids(self, value: Any) -> Any:
        """`value` with every UUID in it wrapped by its registered transcoding: orjson
        would otherwise write a UUID as a bare string (read back as a `str`) without
        ever asking `_default`. Containers without a UUID are returned as they are."""
        kind = type(value)
        if kind is uuid.UUID or isinstance(value, uuid.UUID):
            transcoding = self._transcoding_for(value)
            return {_TYPE: transcoding.name, _DATA: transcoding.encode(value)}
        if kind is dict:
            for item in value.values():
                if type(item) in _CONTAINERS_OR_UUID:
                    changed = self._uuids(item)
                    if changed is not item:
                        return {k: self._uuids(v) for k, v in value.items()}
            return value
        if kind is list or kind is tuple:
            changed_items = [self._uuids(item) for item in value]
            if any(a is not b for a, b in zip(changed_items, value, strict=True)):
                return changed_items if kind is list else tuple(changed_items)
        return value

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._uuids(obj), default=self._default,
                                option=orjson.OPT_PASSTHROUGH_DATETIME
                                | orjson.OPT_PASSTHROUGH_SUBCLASS)
        except orjson.JSONEncodeError as error:  # the library's error, as its transcoder says
            if isinstance(error.__cause__, TranscodingNotRegisteredError):
                raise TranscodingNotRegisteredError(str(error.__cause__)) from None
            raise

    def decode(self, data: bytes) -> Any:
        document = orjson.loads(data)
        if type(document) is dict:
            if _TYPE in document and len(document) == 2 and _DATA in document:
                return self._typed(document)
            self._revive_items(document)
            return document
        return self._revive(document)

    def revive(self, value: Any) -> Any:
        """A value decoded by orjson, with registered types rebuilt (used by the views,
        which decode event bodies lazily, one field at a time)."""
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        """Typed values back from their `{_type_, _data_}` form. The decoded document is
        fresh, so containers are revived in place and scalars are never visited."""
        kind = type(value)
        if kind is dict:
            if _TYPE in value and len(value) == 2 and _DATA in value:
                return self._typed(value)
            self._revive_items(value)
        elif kind is list:
            self._revive_list(value)
        return value

    def _revive_items(self, mapping: dict[str, Any]) -> None:
        """The hot loop (an event body is one flat dict of mostly scalars and typed
        values): a typed value is decoded here, its data revived first only when it
        holds containers, without further calls to find out."""
        decoders = self.decoders
        for key, item in mapping.items():
            kind = type(item)
            if kind is dict:
                if len(item) == 2 and _TYPE in item and _DATA in item:
                    decode = decoders.get(item[_TYPE])
                    if decode is None:
                        raise TranscodingNotRegisteredError(
                            _not_deserializable(item[_TYPE]))
                    data = item[_DATA]
                    kind = type(data)
                    if kind is list:
                        for i, element in enumerate(data):
                            if type(element) is dict or type(element) is list:
                                data[i] = self._revive(element)
                    elif kind is dict:
                        data = self._revive(data)
                    mapping[key] = decode(data)
                else:
                    self._revive_items(item)
            elif kind is list:
                for i, element in enumerate(item):
                    if type(element) is dict or type(element) is list:
                        item[i] = self._revive(element)

    def _revive_list(self, items: list[Any]) -> None:
        for i, item in enumerate(items):
            if type(item) is dict or type(item) is list:
                items[i] = self._revive(item)

    def _typed(self, wrapper: dict[str, Any]) -> Any:
        decode = self.decoders.get(wrapper[_TYPE])
        if decode is None:
            raise TranscodingNotRegisteredError(_not_deserializable(wrapper[_TYPE]))
        data = wrapper[_DATA]
        if type(data) is dict or type(data) is list:
            data = self._revive(data)
        return decode(data)


class DatetimeAsISO(Transcoding):
    type = dt.datetime
    name = "datetime_iso"
    decoder = staticmethod(dt.datetime.fromisoformat)

    def encode(self, obj: dt.datetime) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.datetime:
        return dt.datetime.fromisoformat(data)


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"
    decoder = staticmethod(dt.date.fromisoformat)

    def encode(self, obj: dt.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.date:
        return dt.date.fromisoformat(data)


class UUIDAsHex(Transcoding):
    type = uuid.UUID
    name = "uuid_hex"

    def encode(self, obj: uuid.UUID) -> str:
        return obj.hex

    def decode(self, data: str) -> uuid.UUID:
        return uuid.UUID(data)


class Interned:
    """Equal immutable values decoded once: a clinic's events repeat a few catalogue
    spacing rules and product lots many thousands of times, and building the attrs
    value (with its validators) costs more than finding it. Bounded: it starts over
    once it holds `limit` values. A value stored in another shape than a dict by name
    (an old row that skipped its upcaster) fails loudly."""

    def __init__(self, build: Callable[[dict[str, Any]], Any], limit: int = 4096) -> None:
        self.build = build
        self.limit = limit
        self.values: dict[tuple[Any, ...], Any] = {}

    def __call__(self, data: dict[str, Any]) -> Any:
        if type(data) is not dict:
            raise TypeError(f"a value stored as {type(data).__name__}, not by name: "
                            "read without its event's upcaster")
        key = tuple(data.values())
        value = self.values.get(key)
        if value is None:
            value = self.build(data)
            if len(self.values) >= self.limit:
                self.values.clear()
            self.values[key] = value
        return value


class SpacingRuleAsDict(Transcoding):
    """By field name (`domain.schema.VALUE_FIELDS`); version 0.1.0's positional lists are
    named by the events' upcaster before they get here."""

    type = SpacingRule
    name = "spacing_rule"

    def __init__(self) -> None:
        self.decoder = Interned(_spacing_rule)

    def encode(self, obj: SpacingRule) -> dict[str, Any]:
        return {"min_days": obj.min_days, "target_days": obj.target_days,
                "max_days": obj.max_days, "source": obj.source}

    def decode(self, data: dict[str, Any]) -> SpacingRule:
        return self.decoder(data)  # type: ignore[no-any-return]


def _spacing_rule(data: dict[str, Any]) -> SpacingRule:
    # `source` has a default: read as optional (docs/schema-evolution.md).
    return SpacingRule(data["min_days"], data["target_days"], data["max_days"],
                       data.get("source", ""))


class PhaseAsDict(Transcoding):
    type = Phase
    name = "phase"

    def encode(self, obj: Phase) -> dict[str, Any]:
        return {"first": obj.first, "last": obj.last, "rule": obj.rule}

    def decode(self, data: dict[str, Any]) -> Phase:
        return Phase(**data)


class ProtocolAsDict(Transcoding):
    type = Protocol
    name = "protocol"

    def encode(self, obj: Protocol) -> dict[str, Any]:
        return {"indication": obj.indication, "catalogue": obj.catalogue,
                "version": obj.version, "default_sessions": obj.default_sessions,
                "min_planned_sessions": obj.min_planned_sessions,
                "max_planned_sessions": obj.max_planned_sessions,
                "max_extended_sessions": obj.max_extended_sessions,
                "phases": list(obj.phases), "maintenance": obj.maintenance}

    def decode(self, data: dict[str, Any]) -> Protocol:
        return Protocol(**data)


def _product(data: dict[str, Any]) -> Product:
    return Product(data["name"], data["lot"], dt.date.fromisoformat(data["expires_on"]))


class ProductAsDict(Transcoding):
    """By field name, as `SpacingRuleAsDict`."""

    type = Product
    name = "product"

    def __init__(self) -> None:
        self.decoder = Interned(_product)

    def encode(self, obj: Product) -> dict[str, Any]:
        return {"name": obj.name, "lot": obj.lot, "expires_on": obj.expires_on.isoformat()}

    def decode(self, data: dict[str, Any]) -> Product:
        return self.decoder(data)  # type: ignore[no-any-return]


class PersonalInClear(Transcoding):
    """Personal data as plain JSON. The privacy layer replaces this transcoding with one
    that encrypts `data` under the patient's own key (same name, so stores stay readable)."""

    type = Personal
    name = "personal"

    def encode(self, obj: Personal) -> dict[str, Any]:
        return {"patient_ref": obj.patient_ref, "data": obj.data}

    def decode(self, data: dict[str, Any]) -> Personal:
        return Personal(data["patient_ref"], data.get("data"))


class PersonalEncrypted(Transcoding):
    """Personal data encrypted under its patient's own data key (AES-256-GCM, the
    `patient_ref` as associated data). Once the key is shredded it decodes as erased.
    Stores written before encryption (`data` in clear) still read."""

    type = Personal
    name = "personal"

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def encode(self, obj: Personal) -> dict[str, Any]:
        if obj.data is None:
            return {"patient_ref": obj.patient_ref, "data": None}
        ciphertext = self.keyring.encrypt(obj.patient_ref, orjson.dumps(obj.data))
        return {"patient_ref": obj.patient_ref,
                "sealed": base64.b64encode(ciphertext).decode("ascii")}  # stored name

    def decode(self, data: dict[str, Any]) -> Personal:
        patient_ref = data["patient_ref"]
        ciphertext = data.get("sealed")
        if ciphertext is None:
            return Personal(patient_ref, data.get("data"))
        return Personal(patient_ref, _open(self.keyring, patient_ref, ciphertext))

    def decode_deferred(self, data: dict[str, Any]) -> Personal | EncryptedPersonal:
        """As `decode`, but encrypted data stays encrypted until someone reads it."""
        ciphertext = data.get("sealed")
        if ciphertext is None:
            return self.decode(data)
        return EncryptedPersonal(data["patient_ref"], ciphertext, self.keyring)


def _open(keyring: Keyring, patient_ref: str, ciphertext: str) -> Any:
    plain = keyring.decrypt(patient_ref, base64.b64decode(ciphertext))
    return None if plain is None else orjson.loads(plain)


class EncryptedPersonal:
    """Personal data read from the store but not opened yet: the patient's key is fetched
    and the ciphertext decrypted (its AES-GCM tag checked) the first time `data` is read.

    For reads that never show personal data, as the compliance report: a report over
    thousands of courses then neither looks up every patient's key nor decrypts every
    screening. Equal to the `Personal` it opens to; its repr shows no personal data."""

    __slots__ = ("_ciphertext", "_keyring", "_opened", "patient_ref")

    def __init__(self, patient_ref: str, ciphertext: str, keyring: Keyring) -> None:
        self.patient_ref = patient_ref
        self._ciphertext = ciphertext
        self._keyring = keyring
        self._opened: Personal | None = None

    def opened(self) -> Personal:
        if self._opened is None:
            self._opened = Personal(self.patient_ref,
                                    _open(self._keyring, self.patient_ref, self._ciphertext))
        return self._opened

    @property
    def data(self) -> dict[str, Any] | None:
        data: dict[str, Any] | None = self.opened().data
        return data

    @property
    def erased(self) -> bool:
        return self.opened().erased

    def get(self, key: str, default: Any = None) -> Any:
        return self.opened().get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncryptedPersonal):
            return self.opened() == other.opened()
        if isinstance(other, Personal):
            return self.opened() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as Personal: its data is a dict

    def __repr__(self) -> str:
        return f"EncryptedPersonal(patient_ref={self.patient_ref!r})"


def deferring_personal(transcoder: Transcoder) -> Transcoder:
    """A transcoder reading as `transcoder` does, except that encrypted personal data
    stays encrypted until read (`EncryptedPersonal`); `transcoder` itself when it has no such
    data. Encoding is unchanged."""
    if not isinstance(transcoder, OrjsonTranscoder):
        return transcoder
    personal = transcoder.names.get(PersonalEncrypted.name)
    if not isinstance(personal, PersonalEncrypted):
        return transcoder
    deferring = OrjsonTranscoder()
    deferring.types = transcoder.types
    deferring.names = transcoder.names
    deferring.decoders = {**transcoder.decoders, personal.name: personal.decode_deferred}
    return deferring


def default_transcodings(keyring: Keyring | None = None) -> list[Transcoding]:
    """The value types events may hold; with a keyring, personal data is encrypted."""
    personal: Transcoding = PersonalInClear() if keyring is None \
        else PersonalEncrypted(keyring)
    return [DatetimeAsISO(), DateAsISO(), UUIDAsHex(), SpacingRuleAsDict(), PhaseAsDict(),
            ProtocolAsDict(), ProductAsDict(), personal]
