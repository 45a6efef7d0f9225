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
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import Transcoder, Transcoding, TranscodingNotRegisteredError

from coursebook.domain.values import Personal, Phase, Product, Protocol, SpacingRule

if TYPE_CHECKING:
    from coursebook.adapters.keys import Keyring

__all__ = ["OrjsonTranscoder", "PersonalEncrypted", "PersonalInClear", "default_transcodings"]

_TYPE, _DATA = "_type_", "_data_"


class OrjsonTranscoder(Transcoder):
    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}

    def register(self, transcoding: Transcoding) -> None:
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def _transcoding_for(self, obj: Any) -> Transcoding:
        found = self.types.get(type(obj))
        if found is not None:
            return found
        for cls, transcoding in self.types.items():
            if isinstance(obj, cls):
                self.types[type(obj)] = transcoding
                return transcoding
        raise TranscodingNotRegisteredError(
            f"Object of type {type(obj).__name__} has no registered transcoding")

    def _default(self, obj: Any) -> Any:
        transcoding = self._transcoding_for(obj)
        return {_TYPE: transcoding.name, _DATA: transcoding.encode(obj)}

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._default,
                            option=orjson.OPT_PASSTHROUGH_DATETIME
                            | orjson.OPT_PASSTHROUGH_SUBCLASS)

    def decode(self, data: bytes) -> Any:
        return self._revive(orjson.loads(data))

    def revive(self, value: Any) -> Any:
        """A value decoded by orjson, with registered types rebuilt (used by the views,
        which decode event bodies lazily, one field at a time)."""
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        """Typed values back from their `{_type_, _data_}` form. The decoded document is
        fresh, so containers are revived in place, scalars are never visited, and a typed
        value found in a container is decoded there without another call."""
        if type(value) is dict:
            if _TYPE in value and len(value) == 2 and _DATA in value:
                return self._typed(value)
            for key, item in value.items():
                kind = type(item)
                if kind is dict:
                    value[key] = (self._typed(item)
                                  if _TYPE in item and len(item) == 2 and _DATA in item
                                  else self._revive(item))
                elif kind is list:
                    self._revive(item)
        elif type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[i] = self._revive(item)
        return value

    def _typed(self, wrapper: dict[str, Any]) -> Any:
        transcoding = self.names.get(wrapper[_TYPE])
        if transcoding is None:
            raise TranscodingNotRegisteredError(
                f"No transcoding registered for {wrapper[_TYPE]!r}")
        data = wrapper[_DATA]
        if type(data) is dict or type(data) is list:
            data = self._revive(data)
        return transcoding.decode(data)


class DatetimeAsISO(Transcoding):
    type = dt.datetime
    name = "datetime_iso"

    def encode(self, obj: dt.datetime) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.datetime:
        return dt.datetime.fromisoformat(data)


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"

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


class SpacingRuleAsDict(Transcoding):
    type = SpacingRule
    name = "spacing_rule"

    def encode(self, obj: SpacingRule) -> list[Any]:
        return [obj.min_days, obj.target_days, obj.max_days, obj.source]

    def decode(self, data: list[Any]) -> SpacingRule:
        return SpacingRule(*data)


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


class ProductAsDict(Transcoding):
    type = Product
    name = "product"

    def encode(self, obj: Product) -> list[Any]:
        return [obj.name, obj.lot, obj.expires_on.isoformat()]

    def decode(self, data: list[Any]) -> Product:
        return Product(data[0], data[1], dt.date.fromisoformat(data[2]))


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
        sealed = self.keyring.encrypt(obj.patient_ref, orjson.dumps(obj.data))
        return {"patient_ref": obj.patient_ref,
                "sealed": base64.b64encode(sealed).decode("ascii")}

    def decode(self, data: dict[str, Any]) -> Personal:
        patient_ref = data["patient_ref"]
        sealed = data.get("sealed")
        if sealed is None:
            return Personal(patient_ref, data.get("data"))
        plain = self.keyring.decrypt(patient_ref, base64.b64decode(sealed))
        return Personal(patient_ref, None if plain is None else orjson.loads(plain))


def default_transcodings(keyring: Keyring | None = None) -> list[Transcoding]:
    """The value types events may hold; with a keyring, personal data is encrypted."""
    personal: Transcoding = PersonalInClear() if keyring is None \
        else PersonalEncrypted(keyring)
    return [DatetimeAsISO(), DateAsISO(), UUIDAsHex(), SpacingRuleAsDict(), PhaseAsDict(),
            ProtocolAsDict(), ProductAsDict(), personal]
