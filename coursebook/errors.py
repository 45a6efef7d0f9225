"""The product's error types: every refusal carries a stable code and the field at fault.

Messages never contain personal data: they name fields, codes, ids and numbers only.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Code", "CoursebookError", "Rejected", "StoreUnavailable", "Tampered"]


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
    """A command or query refused: nothing of it was applied (a command's refusal is
    remembered under its `command_id`, unless it is `CONFLICT`).

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


class Tampered(CoursebookError):
    """A stored record read to answer a question does not match its integrity tag: it was
    changed outside the engine (or is damaged beyond reading). Nothing is answered from it.

    `subject` names what the record belongs to (e.g. `course C1`, or the aggregate id when
    nothing better is known), `version` its version there, `position` its place in the
    log when known, `record` what kind of record it is (`event`, `view row`, `key`, ...).
    The command line exits 3, as `verify` does when it finds tampering.
    """

    def __init__(self, subject: str, version: int | None = None, *,
                 position: int | None = None, record: str = "event",
                 problem: str = "it does not match its integrity tag") -> None:
        self.subject, self.version, self.position = subject, version, position
        self.record, self.problem = record, problem
        where = "" if version is None else f" version {version}"
        at = "" if position is None else f" (log position {position})"
        super().__init__(f"the stored {record} of {subject}{where}{at} was changed outside "
                         f"the engine: {problem}; nothing was answered from it (run: "
                         "coursebook verify)")

    def naming(self, subject: str) -> Tampered:
        """The same finding, naming its subject (e.g. `course C1` for an aggregate id)."""
        return Tampered(subject, self.version, position=self.position, record=self.record,
                        problem=self.problem)

    def as_dict(self) -> dict[str, object]:
        return {"subject": self.subject, "version": self.version, "position": self.position,
                "record": self.record, "problem": self.problem}
