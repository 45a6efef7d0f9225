"""Value objects: frozen, validated, and storable through the event store's transcoder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["ERASED", "Personal", "Phase", "Product", "Protocol", "SpacingRule"]

ERASED = "[erased]"
"""What every output shows in place of personal data whose key was destroyed."""


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1")


@attrs.frozen
class SpacingRule:
    """Calendar days allowed between two consecutive sessions, and where the rule came from."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SpacingRule:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    min_days: int = attrs.field(validator=_positive)
    target_days: int = attrs.field(validator=_positive)
    max_days: int = attrs.field(validator=_positive)
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.min_days <= self.target_days <= self.max_days:
            raise ValueError("spacing needs min_days <= target_days <= max_days")

    def as_dict(self) -> dict[str, int]:
        return {"min_days": self.min_days, "target_days": self.target_days,
                "max_days": self.max_days}


@attrs.frozen
class Phase:
    """Sessions `first`..`last` (open-ended when `last` is None) are spaced by `rule`."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Phase:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    first: int = attrs.field(validator=_positive)
    last: int | None
    rule: SpacingRule

    def covers(self, session_no: int) -> bool:
        return self.first <= session_no and (self.last is None or session_no <= self.last)


def _phases(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(phases)


@attrs.frozen
class Protocol:
    """One indication's spacing rules and plan bounds, as a versioned catalogue entry."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Protocol:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    indication: str
    catalogue: str
    version: int
    default_sessions: int
    min_planned_sessions: int
    max_planned_sessions: int
    max_extended_sessions: int
    phases: tuple[Phase, ...] = attrs.field(converter=_phases)
    maintenance: SpacingRule | None

    @property
    def label(self) -> str:
        return f"{self.catalogue}/{self.indication} v{self.version}"

    def rule_for(self, session_no: int) -> SpacingRule:
        """The phase rule governing the gap before `session_no` (the last phase beyond)."""
        for phase in self.phases:
            if phase.covers(session_no):
                return phase.rule
        return self.phases[-1].rule


@attrs.frozen
class Product:
    """An injected product with its traceable lot."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Product:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    name: str
    lot: str
    expires_on: dt.date

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "lot": self.lot, "expires_on": self.expires_on.isoformat()}


@attrs.frozen
class Personal:
    """Personal data of one patient, kept apart from the facts the rules read.

    It is bound to its `patient_ref` so that the persistence layer can encrypt it with
    that patient's key, and erase it by destroying the key. `data` is None once erased.
    """

    patient_ref: str
    data: dict[str, Any] | None

    @property
    def erased(self) -> bool:
        return self.data is None

    def get(self, key: str, default: Any = None) -> Any:
        if self.data is None:
            return ERASED
        return self.data.get(key, default)
