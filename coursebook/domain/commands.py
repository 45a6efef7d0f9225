"""Commands as data: parsing a JSON object into typed fields, or `INVALID` naming the field.

The tables below are the one declaration of every command: its fields, what each accepts,
whether it is required, what it means, and who may send the command. The engine checks
commands against them (`parse_command`); `command_reference` turns the same tables into
the commands section of `docs/reference.md` and into `docs/commands.schema.json`.

Each field's `Kind` holds the check the engine runs next to the same rule as a JSON
Schema fragment and in words, made from the same parameters, so the three cannot say
different things (`tests/unit/test_command_reference.py` checks that the schema and
the checks agree). Parsers accept the JSON form (strings for timestamps and dates) and,
for Python callers, the already-typed form (aware datetimes, dates). Unknown fields at
any depth are refused, so a typo never silently drops data.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from coursebook.domain.protocols import INDICATIONS
from coursebook.domain.rules import ROLES, SCREENING_FLAGS
from coursebook.errors import Code, Rejected

__all__ = ["ABOUT", "BETWEEN", "COMMANDS", "COMMON", "FACT_COMMANDS", "About", "Between", "F",
           "Kind", "ParsedCommand", "canonical_body", "parse_command", "parse_timestamp",
           "read_command_id"]

COMMAND_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_ID = 128
MAX_TEXT = 2000
MAX_LIST = 50
# Instants this close to the ends of the calendar cannot be turned into a local date in
# every zone (or have days added to them), so they are refused as out of range.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC) + dt.timedelta(days=2)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC) - dt.timedelta(days=2)

REACTION_KINDS = ("redness", "swelling", "bruising", "tenderness", "nodules", "infection",
                  "allergic_reaction", "necrosis", "other")
FACT_COMMANDS = frozenset({"give_session", "report_reaction", "record_consultation",
                           "review_reaction", "record_follow_up", "withdraw_consent"})

Parser = Callable[[Any, str], Any]


# -- the same rules as JSON Schema patterns ----------------------------------------------
BLANKS = ((0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
          (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
          (0x3000, 0x3000))
"""The characters `str.strip()` removes (Python's whitespace), as ranges: a text made only
of them is blank. Spelt out so that a schema pattern means the same in every regex
dialect (`\\s` differs between them)."""

CONTROLS = ((0x00, 0x1F), (0x7F, 0x7F))
"""Control characters, which ids must not contain."""

_END = r"(?![\s\S])"
"""The very end of the text (`$` also matches before a final newline in some dialects)."""


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}"
                   for lo, hi in ranges)


def _text_pattern(min_len: int) -> str:
    """No NUL, and at least `min_len` characters from the first non-blank to the last."""
    free, solid = "[^\\u0000]", f"[^{_ranges(((0, 0), *BLANKS))}]"
    middle = solid if min_len <= 1 else f"{solid}{free}{{{min_len - 2},}}{solid}"
    return f"^{free}*{middle}{free}*{_END}"


def _id_pattern() -> str:
    """No control character, and at least one character that is not blank."""
    free = f"[^{_ranges(CONTROLS)}]"
    solid = f"[^{_ranges((*CONTROLS, *BLANKS))}]"
    return f"^{free}*{solid}{free}*{_END}"


_D2 = "(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
TIMESTAMP_PATTERN = (f"^[0-9]{{4}}-{_D2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                     f"(\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]){_END}")
DATE_PATTERN = f"^[0-9]{{4}}-{_D2}{_END}"


# -- the declaration's building blocks ---------------------------------------------------
@attrs.frozen
class Kind:
    """What a field accepts: `check` (run by the engine on every command), the same rule
    as a JSON Schema fragment (`schema`) and in words (`words`). An object's fields are
    in `fields`, a list's items in `items` (the generator assembles their schemas)."""

    check: Parser
    schema: Mapping[str, Any]
    words: str
    fields: Mapping[str, F] | None = None
    items: Kind | None = None


@attrs.frozen
class F:
    """One field of a command (or of an object inside one): what it accepts, whether it
    is required, whether null is a value (an optional field sent as null counts as left
    out), and what it means (`doc`, shown in the reference)."""

    kind: Kind
    required: bool = True
    nullable: bool = False
    doc: str = ""
    parse: Parser = attrs.field(init=False, eq=False, repr=False, default=attrs.Factory(
        lambda self: self.kind.check, takes_self=True))
    """`kind.check`, kept here for the hot loop of `_parse_fields`."""


@attrs.frozen
class About:
    """What a command does, and the act (a key of `rules.PERMISSIONS`) its actor must be
    allowed; None when any non-empty actor may send it (the embedding backend
    authenticates its staff)."""

    summary: str
    act: str | None


@attrs.frozen
class Between:
    """A rule between fields of one command, checked once every field has passed; a JSON
    Schema cannot state it, so the reference lists it in words (`message`)."""

    field: str
    message: str
    holds: Callable[[dict[str, Any]], bool]


def invalid(field: str, message: str) -> Rejected:
    return Rejected(Code.INVALID, f"{field}: {message}", field)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def text(min_len: int = 1, max_len: int = MAX_TEXT) -> Kind:
    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise invalid(field, "must be a string")
        if not value.strip():
            raise invalid(field, "must not be empty")
        if len(value.strip()) < min_len:
            raise invalid(field, f"must be at least {min_len} characters")
        if len(value) > max_len:
            raise invalid(field, f"must be at most {max_len} characters")
        if "\x00" in value:
            raise invalid(field, "must not contain NUL characters")
        return value
    words = (f"text, at most {max_len} characters" if min_len <= 1 else
             f"text, at least {min_len} characters (spaces at either end not counted), "
             f"at most {max_len}")
    return Kind(parse, {"type": "string", "minLength": min_len, "maxLength": max_len,
                        "pattern": _text_pattern(min_len)}, words)


def identifier(value: Any, field: str) -> str:
    """Ids chosen by the caller: 1-128 printable characters, no control characters."""
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if not value.strip():
        raise invalid(field, "must not be empty")
    if len(value) > MAX_ID:
        raise invalid(field, f"must be at most {MAX_ID} characters")
    if _has_control(value):
        raise invalid(field, "must not contain control characters")
    return value


def command_key(value: Any, field: str) -> str:
    """A `command_id`: the rule `read_command_id` applies before anything else."""
    if not isinstance(value, str) or not COMMAND_ID.fullmatch(value):
        raise invalid(field, "must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return value


def parse_timestamp(value: Any, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise invalid(field, "is not an ISO-8601 timestamp")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise invalid(field, "is not an ISO-8601 timestamp") from None
    else:
        raise invalid(field, "must be an ISO-8601 timestamp string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid(field, "needs a UTC offset (e.g. +01:00 or Z)")
    try:
        in_utc = parsed.astimezone(dt.UTC)
    except OverflowError:
        raise invalid(field, "is out of range") from None
    if not EARLIEST <= in_utc <= LATEST:
        raise invalid(field, "is out of range")
    return parsed


def date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not DATE_TEXT.fullmatch(value):
        raise invalid(field, "must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "is not a valid calendar date") from None


def integer(lo: int | None = None, hi: int | None = None) -> Kind:
    def parse(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(field, "must be an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise invalid(field, "must be an integer")
            value = int(value)
        if lo is not None and value < lo:
            raise invalid(field, f"must be at least {lo}")
        if hi is not None and value > hi:
            raise invalid(field, f"must be at most {hi}")
        return int(value)
    schema: dict[str, Any] = {"type": "integer"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    words = ("integer" if lo is None and hi is None else f"integer, at least {lo}"
             if hi is None else f"integer, at most {hi}" if lo is None
             else f"integer from {lo} to {hi}")
    return Kind(parse, schema, words)


def dose(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float (Python callers only)
        raise invalid(field, "must be greater than 0 and at most 20") from None
    if not math.isfinite(number) or not 0 < number <= 20:
        raise invalid(field, "must be greater than 0 and at most 20")
    return number


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def one_of(*choices: str) -> Kind:
    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise invalid(field, f"must be one of {', '.join(choices)}")
        return value
    return Kind(parse, {"type": "string", "enum": list(choices)},
                "one of " + ", ".join(f"`{choice}`" for choice in choices))


def list_of(inner: Kind, *, min_items: int = 0, max_items: int = MAX_LIST) -> Kind:
    check = inner.check

    def parse(value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(field, "must be a list")
        if len(value) < min_items:
            raise invalid(field, f"needs at least {min_items} item(s)")
        if len(value) > max_items:
            raise invalid(field, f"takes at most {max_items} items")
        return [check(item, f"{field}[{i}]") for i, item in enumerate(value)]
    size = (f"{min_items} to {max_items} items" if min_items else
            f"at most {max_items} items, may be empty")
    return Kind(parse, {"type": "array", "minItems": min_items, "maxItems": max_items},
                f"list ({size}) of {inner.words}", items=inner)


def obj(schema: Mapping[str, F]) -> Kind:
    def parse(value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(field, "must be an object")
        return _parse_fields(value, schema, prefix=f"{field}.")
    return Kind(parse, {"type": "object"}, "object, fields below", fields=schema)


ID = Kind(identifier, {"type": "string", "minLength": 1, "maxLength": MAX_ID,
                       "pattern": _id_pattern()},
          f"id: 1 to {MAX_ID} characters, not blank, no control characters")
COMMAND_KEY = Kind(command_key, {"type": "string", "minLength": 1, "maxLength": MAX_ID,
                                 "pattern": f"^[A-Za-z0-9._:-]{{1,{MAX_ID}}}{_END}"},
                   f"1 to {MAX_ID} characters of `A-Z a-z 0-9 . _ : -`")
TIMESTAMP = Kind(parse_timestamp, {"type": "string", "format": "date-time",
                                   "pattern": TIMESTAMP_PATTERN},
                 "timestamp with a UTC offset: `2026-03-04T10:30:00+01:00`, `...Z`")
DATE = Kind(date, {"type": "string", "format": "date", "pattern": DATE_PATTERN},
            "date `YYYY-MM-DD`")
BOOLEAN = Kind(boolean, {"type": "boolean"}, "`true` or `false`")
DOSE = Kind(dose, {"type": "number", "exclusiveMinimum": 0, "maximum": 20},
            "number, more than 0 and at most 20")


def unknown_field(prefix: str, position: int) -> str:
    """How a message names a field that is not in the reference: by its place in its
    object (`screening.(unknown #3)`), never by the name sent, which may be anything."""
    return f"{prefix}(unknown #{position})"


def _parse_fields(raw: Mapping[str, Any], schema: Mapping[str, F],
                  prefix: str = "") -> dict[str, Any]:
    for position, key in enumerate(raw, start=1):
        if key not in schema:
            raise invalid(unknown_field(prefix, position), "is not a known field "
                          f"(key {position} of {prefix.rstrip('.') or 'the command'}; "
                          "an unknown name is never repeated: it may be personal data)")
    parsed: dict[str, Any] = {}
    for key, spec in schema.items():
        if key not in raw:
            if spec.required:
                raise invalid(f"{prefix}{key}", "is required")
            continue
        value = raw[key]
        if value is None:
            if spec.nullable:
                parsed[key] = None
            elif spec.required:
                raise invalid(f"{prefix}{key}", "must not be null")
            continue
        parsed[key] = spec.parse(value, f"{prefix}{key}")
    return parsed


# -- the declaration -----------------------------------------------------------------------
PRODUCT = {
    "name": F(text(max_len=200), doc="The product's name (checked against the allergies "
                                     "in force: `ALLERGEN`)."),
    "lot": F(text(max_len=100), doc="The manufacturer's lot, for traceability."),
    "expires_on": F(DATE, doc="The lot's expiry date: a lot that expired before the "
                              "session's local date is `LOT_EXPIRED`."),
}
PATIENT = {
    "name": F(text(max_len=200), doc="The patient's name."),
    "birth_date": F(DATE, doc="The patient's date of birth."),
}
SCREENING_DOCS = {
    "pregnant": "Pregnant: puts the absolute contraindication `PREGNANCY` in force.",
    "breastfeeding": "Breastfeeding: absolute, `BREASTFEEDING`.",
    "active_infection_at_site": "An active infection where the treatment would go: "
                                "absolute, `ACTIVE_INFECTION`.",
    "bleeding_disorder": "A bleeding disorder: absolute, `BLEEDING_DISORDER`.",
    "anticoagulants": "Takes anticoagulants: relative (a caution: bruising risk), "
                      "`ANTICOAGULANTS`.",
    "autoimmune_disease": "An autoimmune disease: relative, `AUTOIMMUNE_DISEASE`.",
    "diabetes": "Diabetes: relative, `DIABETES`.",
    "heart_condition": "A heart condition: relative, `HEART_CONDITION`.",
}
SCREENING = {
    **{flag: F(BOOLEAN, doc=SCREENING_DOCS[flag]) for flag in SCREENING_FLAGS},
    "allergies": F(list_of(text(max_len=200)),
                   doc="Known allergies, matched against every product's `name` and the "
                       "`anaesthetic` of each session (`ALLERGEN`)."),
    "medications": F(list_of(text(max_len=200)), doc="Current medications."),
    "notes": F(text(), required=False, doc="Free notes of the screening."),
}

COMMON = {
    "command": F(text(), doc="The command's name."),
    "command_id": F(COMMAND_KEY, doc="Your key for this command. Sent again with the same "
                                     "body it is a duplicate (nothing more is recorded); "
                                     "with another body, once applied, it is "
                                     "`CONFLICTING_DUPLICATE`. A body refused under it is "
                                     "refused again the same way (except `CONFLICT`)."),
    "at": F(TIMESTAMP, doc="When the act happened in the clinic (valid time)."),
    "actor": F(ID, doc="Who performs or decides the act: a registered practitioner for "
                       "clinical acts (see \"who may\"), any id of your staff otherwise."),
    "expected_version": F(integer(lo=0), required=False,
                          doc="The version of the record you last saw (the course; the "
                              "practitioner for `register_practitioner` and "
                              "`renew_license`; the patient for `erase_patient`), 0 for "
                              "one that does not exist yet; any other version is "
                              "`CONFLICT`."),
}
COURSE = F(ID, doc="The course (`NOT_FOUND` if there is none).")
SESSION_NO = integer(lo=1, hi=1000)
OVERRIDE_REASON = F(text(min_len=10), required=False,
                    doc="Why the session may come sooner than the spacing rule's "
                        "`min_days`: without it, a session too soon is `TOO_SOON`.")
NEXT_SESSION_NO = F(SESSION_NO, required=False,
                    doc="The session's number: only the next one is allowed (`INVALID` "
                        "otherwise), and it is the default.")
LICENSE_NUMBER = F(text(max_len=100), doc="The licence's number.")
LICENSE_EXPIRES_ON = F(DATE, doc="The licence's last valid day (inclusive), in the "
                                 "clinic's zone.")

COMMANDS: dict[str, dict[str, F]] = {
    "register_practitioner": {
        "practitioner_id": F(ID, doc="The practitioner's id, chosen by you "
                                     "(`ALREADY_EXISTS` if in use): the `actor` of their "
                                     "acts."),
        "name": F(text(max_len=200), doc="The practitioner's name."),
        "role": F(one_of(*ROLES), doc="Decides what the practitioner may do (see \"who "
                                      "may\")."),
        "license_number": LICENSE_NUMBER,
        "license_expires_on": LICENSE_EXPIRES_ON,
    },
    "renew_license": {
        "practitioner_id": F(ID, doc="A registered practitioner (`NOT_FOUND` otherwise)."),
        "license_number": LICENSE_NUMBER,
        "license_expires_on": LICENSE_EXPIRES_ON,
    },
    "open_course": {
        "course_id": F(ID, doc="The course's id, chosen by you (`ALREADY_EXISTS` if in "
                               "use)."),
        "patient_ref": F(ID, doc="Your pseudonymous reference of the patient: never a "
                                 "name. An erased one cannot be used again "
                                 "(`PATIENT_ERASED`)."),
        "indication": F(one_of(*INDICATIONS), doc="What the course treats: it selects the "
                                                  "protocol, which the course keeps for "
                                                  "life."),
        "planned_sessions": F(integer(lo=1, hi=1000), required=False,
                              doc="Sessions planned. Default and allowed range come from "
                                  "the protocol (default protocols: 3 to 10); outside "
                                  "the range is `INVALID`."),
        "patient": F(obj(PATIENT), required=False,
                     doc="The patient's personal data: stored encrypted, shown by `course "
                         "show`, and erased with the patient."),
    },
    "record_consultation": {
        "course_id": COURSE,
        "consent": F(BOOLEAN, doc="Whether the patient consents: `false` refuses every "
                                  "session (`NO_CONSENT`) until a later consultation "
                                  "with consent."),
        "screening": F(obj(SCREENING),
                       doc="The health screening. Every answer is required: unknown is "
                           "not \"no\". Personal data: stored encrypted."),
    },
    "override_contraindication": {
        "course_id": COURSE,
        "code": F(text(max_len=64), doc="An absolute contraindication in force and not yet "
                                        "overridden (`INVALID` otherwise)."),
        "justification": F(text(min_len=20), doc="Why the benefit outweighs the risk."),
    },
    "schedule_session": {
        "course_id": COURSE,
        "planned_at": F(TIMESTAMP, doc="When the session is booked for; spacing is "
                                       "checked on its local date."),
        "session_no": NEXT_SESSION_NO,
        "practitioner_id": F(ID, required=False,
                             doc="Who is booked to give it: a registered practitioner "
                                 "(`NOT_FOUND` otherwise)."),
        "spacing_override_reason": OVERRIDE_REASON,
    },
    "reschedule_session": {
        "course_id": COURSE,
        "session_no": F(SESSION_NO, doc="The session booked (`NOT_FOUND` otherwise)."),
        "planned_at": F(TIMESTAMP, doc="The new time; spacing is checked on its local "
                                       "date."),
        "reason": F(text(), doc="Why the booking moves."),
        "spacing_override_reason": OVERRIDE_REASON,
    },
    "cancel_session": {
        "course_id": COURSE,
        "session_no": F(SESSION_NO, doc="The session booked (`NOT_FOUND` otherwise)."),
        "reason": F(text(), doc="Why the booking is cancelled."),
    },
    "give_session": {
        "course_id": COURSE,
        "session_no": NEXT_SESSION_NO,
        "products": F(list_of(obj(PRODUCT), min_items=1),
                      doc="Every product injected, with its lot."),
        "areas": F(list_of(text(max_len=100), min_items=1), doc="The areas treated."),
        "dose_ml": F(DOSE, doc="The volume injected, in millilitres."),
        "anaesthetic": F(text(max_len=200), nullable=True,
                         doc="The local anaesthetic used, or null for none (checked "
                             "against the allergies in force: `ALLERGEN`)."),
        "spacing_override_reason": OVERRIDE_REASON,
        "aftercare": F(text(max_len=200), required=False,
                       doc="The identifier and version of the written aftercare "
                           "instructions handed to the patient. Under a catalogue with "
                           "`aftercare_required`, a session without it is the finding "
                           "`AFTERCARE_NOT_RECORDED`."),
    },
    "report_reaction": {
        "course_id": COURSE,
        "session_no": F(SESSION_NO, doc="The session reacted to: a given one (`NOT_FOUND` "
                                        "otherwise)."),
        "kind": F(one_of(*REACTION_KINDS), doc="What was observed."),
        "severity": F(integer(lo=1, hi=5), doc="1 mild, 2 moderate, 3 severe, "
                                               "4 life-threatening, 5 fatal. From 3 on "
                                               "(or whatever the severity for a kind the "
                                               "course's catalogue lists as serious), a "
                                               "physician must review it before the "
                                               "next session."),
        "notes": F(text(), required=False, doc="Free notes (personal data)."),
    },
    "review_reaction": {
        "course_id": COURSE,
        "session_no": F(SESSION_NO, doc="A session with a reaction of severity 3 or more, "
                                        "or of a serious kind, awaiting review "
                                        "(`NOT_FOUND` otherwise)."),
        "decision": F(one_of("continue", "discontinue"),
                      doc="`continue`, or `discontinue`: the course is then "
                          "discontinued."),
        "notes": F(text(), required=False, doc="Free notes (personal data)."),
    },
    "record_follow_up": {
        "course_id": COURSE,
        "session_no": F(SESSION_NO, doc="The session followed up: a given one (`NOT_FOUND` "
                                        "otherwise); an `at` before it is "
                                        "`OUT_OF_ORDER`."),
        "outcome": F(one_of("as_expected", "concern"), doc="How the patient is doing."),
        "notes": F(text(), required=False, doc="Free notes (personal data)."),
    },
    "withdraw_consent": {
        "course_id": COURSE,
        "reason": F(text(), required=False, doc="Why, or how the withdrawal was received; "
                                                "put no personal data in it."),
    },
    "adjust_interval": {
        "course_id": COURSE,
        "min_days": F(integer(lo=1, hi=365), doc="The fewest calendar days between two "
                                                 "sessions. Under a catalogue with "
                                                 "`below_protocol_min_needs_physician`, "
                                                 "only a physician may set it below the "
                                                 "protocol's own for the next session "
                                                 "(`NOT_AUTHORIZED`)."),
        "target_days": F(integer(lo=1, hi=365), doc="The days aimed at."),
        "max_days": F(integer(lo=1, hi=365), doc="The most days before the next session "
                                                 "is overdue."),
        "reason": F(text(min_len=10), doc="Why the spacing changes."),
    },
    "extend_plan": {
        "course_id": COURSE,
        "planned_sessions": F(integer(lo=1, hi=1000),
                              doc="The new number of planned sessions: more than the "
                                  "sessions given and at most the protocol's ceiling "
                                  "(20 in the default protocols); `INVALID` otherwise."),
        "reason": F(text(), doc="Why the plan changes."),
    },
    "pause_course": {"course_id": COURSE, "reason": F(text(), doc="Why the course pauses.")},
    "resume_course": {"course_id": COURSE,
                      "reason": F(text(), required=False, doc="Why it resumes.")},
    "complete_course": {"course_id": COURSE},
    "discontinue_course": {"course_id": COURSE,
                           "reason": F(text(), doc="Why the course stops.")},
    "erase_patient": {
        "patient_ref": F(ID, doc="A patient of an opened course (`NOT_FOUND` otherwise)."),
        "reason": F(text(), doc="Why, e.g. the patient's request; kept after erasure: put "
                                "no personal data in it."),
    },
}

ABOUT: dict[str, About] = {
    "register_practitioner": About("Registers a practitioner, with a role and a licence.",
                                   None),
    "renew_license": About("Records a practitioner's new or renewed licence.", None),
    "open_course": About("Opens a treatment course for one patient and one indication, "
                         "under the protocol the catalogue holds for it now.", None),
    "record_consultation": About("Records a consultation: consent and the health "
                                 "screening, whose answers decide the contraindications "
                                 "in force until the next consultation.", "consult"),
    "override_contraindication": About("Sets aside an absolute contraindication in force, "
                                       "for this course and the current consultation "
                                       "only.", "override"),
    "schedule_session": About("Books the next session.", "schedule"),
    "reschedule_session": About("Moves the booked session to another time.", "schedule"),
    "cancel_session": About("Cancels the booked session.", "schedule"),
    "give_session": About("Records a session given: products and lots, areas, dose, "
                          "anaesthetic and aftercare.", "inject"),
    "report_reaction": About("Records a reaction to a given session, whatever the "
                             "course's status.", "report"),
    "review_reaction": About("Reviews the severe reactions awaiting review for a session, "
                             "and decides whether the course goes on.", "review"),
    "record_follow_up": About("Records a follow-up of a given session, whatever the "
                              "course's status.", "follow_up"),
    "withdraw_consent": About("Records that the patient withdrew consent: every session "
                              "is refused `NO_CONSENT` until a later consultation with "
                              "consent; whatever the course's status.", "withdraw"),
    "adjust_interval": About("Sets the spacing rule of every later session of the "
                             "course, in place of the protocol's.", "adjust"),
    "extend_plan": About("Changes the number of planned sessions.", "extend"),
    "pause_course": About("Pauses the course: no session is booked or given until it "
                          "resumes.", "pause"),
    "resume_course": About("Resumes a paused course, in the status it had before.",
                           "resume"),
    "complete_course": About("Ends the planned series (at least one session given). With "
                             "a maintenance rule in its protocol, the course goes on in "
                             "maintenance; otherwise it is completed.", "complete"),
    "discontinue_course": About("Stops the course for good.", "discontinue"),
    "erase_patient": About("Erases a patient's personal data in every one of their "
                           "courses, by destroying the patient's key; the clinical record "
                           "stays.", None),
}

_NOT_BEFORE_AT = Between("planned_at", "must not be before at",
                         lambda fields: not fields["planned_at"] < fields["at"])
BETWEEN: dict[str, tuple[Between, ...]] = {
    "adjust_interval": (Between(
        "target_days", "needs min_days <= target_days <= max_days",
        lambda fields: fields["min_days"] <= fields["target_days"] <= fields["max_days"]),),
    "schedule_session": (_NOT_BEFORE_AT,),
    "reschedule_session": (_NOT_BEFORE_AT,),
}
"""The rules between fields of a command, in the order they are checked."""


@attrs.frozen
class ParsedCommand:
    """A command whose every field has been checked and typed."""

    name: str
    command_id: str
    at: dt.datetime
    actor: str
    expected_version: int | None
    fields: dict[str, Any]


def read_command_id(raw: Any) -> str:
    """The first check of all: a JSON object with a well-formed `command_id`."""
    if not isinstance(raw, dict):
        raise invalid("(line)", "a command must be a JSON object")
    command_id = raw.get("command_id")
    if command_id is None:
        raise invalid("command_id", "is required")
    if not isinstance(command_id, str) or not COMMAND_ID.fullmatch(command_id):
        raise invalid("command_id", "must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    deep = _nested_too_deep(raw)
    if deep is not None:
        raise invalid(deep, f"is nested more than {MAX_DEPTH} levels deep")
    return command_id


MAX_DEPTH = 32
"""How deep a command's JSON may nest (the deepest field in the reference is 3 levels)."""


def _nested_too_deep(raw: Mapping[Any, Any]) -> str | None:
    """The top-level field whose value nests more than `MAX_DEPTH` levels, if any.

    Iterative, and stopping at the limit: a hostile line (or a host's cyclic dict) can
    neither exhaust the stack nor loop."""
    known = _FIELD_NAMES
    for position, (key, value) in enumerate(raw.items(), start=1):
        if type(value) in _SCALARS:
            continue
        stack: list[tuple[Any, int]] = [(value, 2)]
        while stack:
            item, depth = stack.pop()
            children = (item.values() if isinstance(item, Mapping) else
                        item if isinstance(item, list | tuple) else None)
            if children is None:
                continue
            if depth > MAX_DEPTH:
                return key if key in known else unknown_field("", position)
            stack.extend((child, depth + 1) for child in children)
    return None


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""JSON's scalar types: a top-level field holding one nests nothing."""

_FIELD_NAMES = frozenset(COMMON).union(*COMMANDS.values())
"""Every top-level field name in the reference (messages may repeat these)."""


def parse_command(raw: Mapping[str, Any]) -> ParsedCommand:
    """Checks a command's name and fields (the command_id was read already)."""
    name = raw.get("command")
    if not isinstance(name, str) or not name.strip():
        raise invalid("command", "is required and must be a command name")
    if name not in COMMANDS:
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise Rejected(Code.UNKNOWN_COMMAND, f"command: no command named {shown!r}", "command")
    fields = _parse_fields(raw, {**COMMON, **COMMANDS[name]})
    for rule in BETWEEN.get(name, ()):
        if not rule.holds(fields):
            raise invalid(rule.field, rule.message)
    common = {key: fields.pop(key) for key in COMMON if key in fields}
    return ParsedCommand(name=name, command_id=common["command_id"], at=common["at"],
                         actor=common["actor"],
                         expected_version=common.get("expected_version"), fields=fields)


def _beyond_64_bits(value: Any) -> bool:
    """A whole number JSON encoders cannot hold as an integer (refused later, when parsed)."""
    if isinstance(value, float):
        return value.is_integer() and not -(2**63) <= value < 2**63
    return isinstance(value, int) and not -(2**63) <= value < 2**64


def _canonical(value: Any) -> Any:
    if type(value) is str:
        return value
    if _beyond_64_bits(value):
        return value if isinstance(value, float) else f"(integer {value})"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return repr(value)


def canonical_body(raw: Mapping[str, Any]) -> Any:
    """JSON-equal bodies give equal canonical forms (key order and 2 vs 2.0 do not matter)."""
    return _canonical(raw)
