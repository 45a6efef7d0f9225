"""The product's error types: every refusal carries a stable code and the field at fault.

Messages never contain personal data: they name fields, codes, ids and numbers only.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Code", "CoursebookError", "Rejected", "StoreUnavailable"]


class Code(StrEnum):
    """Rejection codes, in the order the rules check them (docs/reference.md, section 6)."""

    INVALID = "INVALID"
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    CONFLICTING_DUPLICATE = "CONFLICTING_DUPLICATE"
    CONFLICT = "CONFLICT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FUTURE_FACT = "FUTURE_FACT"
    PATIENT_ERASED = "PATIENT_ERASED"
    COURSE_CLOSED = "COURSE_CLOSED"
    COURSE_PAUSED = "COURSE_PAUSED"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    NO_CONSULTATION = "NO_CONSULTATION"
    NO_CONSENT = "NO_CONSENT"
    SCREENING_STALE = "SCREENING_STALE"
    CONTRAINDICATED = "CONTRAINDICATED"
    ALLERGEN = "ALLERGEN"
    LOT_EXPIRED = "LOT_EXPIRED"
    REACTION_UNREVIEWED = "REACTION_UNREVIEWED"
    PLAN_EXCEEDED = "PLAN_EXCEEDED"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    TOO_SOON = "TOO_SOON"


class CoursebookError(Exception):
    """Base class of every error coursebook raises on purpose."""


class Rejected(CoursebookError):
    """A command or query refused: nothing was recorded.

    `field` names the input at fault (dotted path, e.g. `screening.diabetes`), or is None
    when the refusal is about state rather than one field.
    """

    def __init__(self, code: Code, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"code": str(self.code), "message": self.message, "field": self.field}


class StoreUnavailable(CoursebookError):
    """The store cannot be opened: missing, not a coursebook store, unreachable, or keyless."""
