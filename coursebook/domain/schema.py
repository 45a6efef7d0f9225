"""How stored events and values change shape over the years: versions and upcasters.

Events are facts and are never rewritten. When an event's stored form changes, its
class's `class_version` goes up by one and the class gains a static method
`upcast_vN_vN1(state)` that turns the stored state of version N into that of N + 1 (the
library's idiom). The state an upcaster sees is the raw JSON of the stored body: plain
values, and values of registered types in their stored form `{"_type_": name, "_data_":
...}`. Upcasters therefore never depend on today's value classes.

`upgrade` is the one way in: the mapper and every fast read path (views, time travel,
compliance, snapshots) call it on each stored body before reading a field of it. A body
written by a newer coursebook (a `class_version` above the class's) fails loudly with
`NewerRecord` instead of being read wrongly; so does a record whose topic names no class
this code knows (`record_class`: `UnknownRecord`).

Values are stored by field name (`VALUE_FIELDS`), so a new optional field never breaks
an old row. Version 0.1.0 stored two of them by position; `values_by_name` is the
upcaster that names them (version 1 to 2 of every course event). docs/schema-evolution.md
tells how to add the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsourcing.utils import resolve_topic

from coursebook.errors import StoreUnavailable

__all__ = ["DEFAULT_1", "VALUE_FIELDS", "NewerRecord", "UnknownRecord", "course_catalogue",
           "no_aftercare", "no_medication_codes", "record_class", "stored_version",
           "upcasters", "upgrade", "values_by_name"]

VERSION_KEY = "class_version"
"""Where the library keeps a stored body's version (absent: version 1)."""

VALUE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "spacing_rule": ("min_days", "target_days", "max_days", "source"),
    "product": ("name", "lot", "expires_on"),
}
"""The field names of the values that version 0.1.0 stored as positional lists, in the
order it wrote them."""


DEFAULT_1: Mapping[str, Any] = {
    "name": "default", "version": 1,
    "digest": "9d1eb6192221dc6f296ca707582d380a607f5d36d43cb0bbb2bb4d4493a8c42d"}
"""The catalogue `default@1` as a course records it (`{"name", "version", "digest"}`;
the tests check the digest against the shipped file): every course opened before
catalogues existed was opened under it."""


class NewerRecord(StoreUnavailable):
    """A stored record of a version this code does not know: written by a newer
    coursebook. Reading on would misread it."""

    def __init__(self, topic: str, stored: int, known: int) -> None:
        super().__init__(f"a stored {topic.rpartition(':')[2]} is of version {stored}, "
                         f"and this coursebook reads versions up to {known}: the store "
                         "was written by a newer coursebook (upgrade coursebook)")
        self.topic, self.stored, self.known = topic, stored, known


class UnknownRecord(StoreUnavailable):
    """A stored record whose topic names no class this code knows: an event type added by
    a newer coursebook, or a class renamed without registering its old topic
    (`domain.topics.renamed`)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"a stored record of type {topic.rpartition(':')[2] or topic!r} is "
                         "not known to this coursebook: the store was written by a newer "
                         "coursebook (upgrade coursebook)")
        self.topic = topic


def record_class(topic: str) -> Any:
    """The class a stored record's topic names (old names included), or `UnknownRecord`."""
    try:
        return resolve_topic(topic)
    except Exception:  # the library's TopicError, or an import that fails
        raise UnknownRecord(topic) from None


def stored_version(state: Mapping[str, Any]) -> int:
    """The version a raw stored body was written at (0: not a version at all)."""
    version = state.get(VERSION_KEY, 1)
    return version if type(version) is int else 0


def upcasters(cls: type, stored: int) -> list[str]:
    """The names of the upcasters that bring a body of `cls` stored at version `stored`
    to the class's current version, in the order they run."""
    current: int = getattr(cls, VERSION_KEY, 1)
    return [f"upcast_v{n}_v{n + 1}" for n in range(max(stored, 1), current)]


def upgrade(cls: type, topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """`state` (the raw JSON body of a stored event of class `cls`) brought to the
    class's current version, in place: the version key is removed and the class's
    upcasters run in turn. Raises `NewerRecord` for a version it does not know."""
    current: int = getattr(cls, VERSION_KEY, 1)
    stored = state.pop(VERSION_KEY, 1)
    if type(stored) is not int or stored < 1 or stored > current:
        raise NewerRecord(topic, stored if type(stored) is int else 0, current)
    while stored < current:
        getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
        stored += 1
    return state


def values_by_name(state: dict[str, Any]) -> None:
    """Upcaster (0.1.0 to 0.2): every value stored as a positional list is stored by name
    (`VALUE_FIELDS`), wherever it stands in the body."""
    _name_values(state)


def _name_values(node: Any) -> None:
    if type(node) is dict:
        kind = node.get("_type_")
        if kind is not None and len(node) == 2 and "_data_" in node:
            data = node["_data_"]
            fields = VALUE_FIELDS.get(kind)
            if fields is not None and type(data) is list:
                node["_data_"] = dict(zip(fields, data, strict=True))
                return
            _name_values(data)
            return
        for value in node.values():
            _name_values(value)
    elif type(node) is list:
        for value in node:
            _name_values(value)


def course_catalogue(state: dict[str, Any]) -> None:
    """Upcaster of `TreatmentCourse.Opened` (version 2 to 3, catalogues): a course opened
    before catalogues existed was opened under `default@1`, which sets no safety
    parameter."""
    state.setdefault("catalogue", dict(DEFAULT_1))
    state.setdefault("safety", {})


def no_medication_codes(state: dict[str, Any]) -> None:
    """Upcaster of `ConsultationRecorded` (version 2 to 3): no code was put in force by
    the medication list before catalogues could name blood thinners."""
    state.setdefault("from_medications", [])


def no_aftercare(state: dict[str, Any]) -> None:
    """Upcaster of `SessionGiven` (version 2 to 3): sessions given before `aftercare`
    existed recorded none."""
    state.setdefault("aftercare", None)
