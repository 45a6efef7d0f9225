"""Commands as data: parsing a JSON object into typed fields, or `INVALID` naming the field.

The schema below is CONTRACT section 3. Parsers accept the JSON form (strings for
timestamps and dates) and, for Python callers, the already-typed form (aware datetimes,
dates). Unknown fields at any depth are refused, so a typo never silently drops data.
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

__all__ = ["COMMANDS", "FACT_COMMANDS", "ParsedCommand", "canonical_body", "parse_command",
           "parse_timestamp", "read_command_id"]

COMMAND_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
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
                           "review_reaction"})

Parser = Callable[[Any, str], Any]


def invalid(field: str, message: str) -> Rejected:
    return Rejected(Code.INVALID, f"{field}: {message}", field)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def text(min_len: int = 1, max_len: int = MAX_TEXT) -> Parser:
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
    return parse


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
    if not isinstance(value, str) or not DATE.fullmatch(value):
        raise invalid(field, "must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "is not a valid calendar date") from None


def integer(lo: int | None = None, hi: int | None = None) -> Parser:
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
    return parse


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


def one_of(*choices: str) -> Parser:
    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise invalid(field, f"must be one of {', '.join(choices)}")
        return value
    return parse


def list_of(inner: Parser, *, min_items: int = 0, max_items: int = MAX_LIST) -> Parser:
    def parse(value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(field, "must be a list")
        if len(value) < min_items:
            raise invalid(field, f"needs at least {min_items} item(s)")
        if len(value) > max_items:
            raise invalid(field, f"takes at most {max_items} items")
        return [inner(item, f"{field}[{i}]") for i, item in enumerate(value)]
    return parse


@attrs.frozen
class F:
    """One field of a schema."""

    parse: Parser
    required: bool = True
    nullable: bool = False


def obj(schema: Mapping[str, F]) -> Parser:
    def parse(value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(field, "must be an object")
        return _parse_fields(value, schema, prefix=f"{field}.")
    return parse


def _parse_fields(raw: Mapping[str, Any], schema: Mapping[str, F],
                  prefix: str = "") -> dict[str, Any]:
    for key in raw:
        if key not in schema:
            shown = key if isinstance(key, str) and len(key) <= 64 else "(long name)"
            raise invalid(f"{prefix}{shown}", "is not a known field")
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


PRODUCT = {"name": F(text(max_len=200)), "lot": F(text(max_len=100)), "expires_on": F(date)}
PATIENT = {"name": F(text(max_len=200)), "birth_date": F(date)}
SCREENING = {
    **{flag: F(boolean) for flag in SCREENING_FLAGS},
    "allergies": F(list_of(text(max_len=200))),
    "medications": F(list_of(text(max_len=200))),
    "notes": F(text(), required=False),
}

COMMON = {
    "command": F(text()),
    "command_id": F(text()),
    "at": F(parse_timestamp),
    "actor": F(identifier),
    "expected_version": F(integer(lo=0), required=False),
}
OVERRIDE_REASON = F(text(min_len=10), required=False)

COMMANDS: dict[str, dict[str, F]] = {
    "register_practitioner": {
        "practitioner_id": F(identifier), "name": F(text(max_len=200)),
        "role": F(one_of(*ROLES)), "license_number": F(text(max_len=100)),
        "license_expires_on": F(date),
    },
    "renew_license": {
        "practitioner_id": F(identifier), "license_number": F(text(max_len=100)),
        "license_expires_on": F(date),
    },
    "open_course": {
        "course_id": F(identifier), "patient_ref": F(identifier),
        "indication": F(one_of(*INDICATIONS)),
        "planned_sessions": F(integer(lo=1, hi=1000), required=False),
        "patient": F(obj(PATIENT), required=False),
    },
    "record_consultation": {
        "course_id": F(identifier), "consent": F(boolean), "screening": F(obj(SCREENING)),
    },
    "override_contraindication": {
        "course_id": F(identifier), "code": F(text(max_len=64)),
        "justification": F(text(min_len=20)),
    },
    "schedule_session": {
        "course_id": F(identifier), "planned_at": F(parse_timestamp),
        "session_no": F(integer(lo=1, hi=1000), required=False),
        "practitioner_id": F(identifier, required=False),
        "spacing_override_reason": OVERRIDE_REASON,
    },
    "reschedule_session": {
        "course_id": F(identifier), "session_no": F(integer(lo=1, hi=1000)),
        "planned_at": F(parse_timestamp), "reason": F(text()),
        "spacing_override_reason": OVERRIDE_REASON,
    },
    "cancel_session": {
        "course_id": F(identifier), "session_no": F(integer(lo=1, hi=1000)),
        "reason": F(text()),
    },
    "give_session": {
        "course_id": F(identifier),
        "session_no": F(integer(lo=1, hi=1000), required=False),
        "products": F(list_of(obj(PRODUCT), min_items=1)),
        "areas": F(list_of(text(max_len=100), min_items=1)),
        "dose_ml": F(dose),
        "anaesthetic": F(text(max_len=200), nullable=True),
        "spacing_override_reason": OVERRIDE_REASON,
    },
    "report_reaction": {
        "course_id": F(identifier), "session_no": F(integer(lo=1, hi=1000)),
        "kind": F(one_of(*REACTION_KINDS)), "severity": F(integer(lo=1, hi=5)),
        "notes": F(text(), required=False),
    },
    "review_reaction": {
        "course_id": F(identifier), "session_no": F(integer(lo=1, hi=1000)),
        "decision": F(one_of("continue", "discontinue")),
        "notes": F(text(), required=False),
    },
    "adjust_interval": {
        "course_id": F(identifier), "min_days": F(integer(lo=1, hi=365)),
        "target_days": F(integer(lo=1, hi=365)), "max_days": F(integer(lo=1, hi=365)),
        "reason": F(text(min_len=10)),
    },
    "extend_plan": {
        "course_id": F(identifier), "planned_sessions": F(integer(lo=1, hi=1000)),
        "reason": F(text()),
    },
    "pause_course": {"course_id": F(identifier), "reason": F(text())},
    "resume_course": {"course_id": F(identifier), "reason": F(text(), required=False)},
    "complete_course": {"course_id": F(identifier)},
    "discontinue_course": {"course_id": F(identifier), "reason": F(text())},
    "erase_patient": {"patient_ref": F(identifier), "reason": F(text())},
}


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
    return command_id


def parse_command(raw: Mapping[str, Any]) -> ParsedCommand:
    """Checks a command's name and fields (the command_id was read already)."""
    name = raw.get("command")
    if not isinstance(name, str) or not name.strip():
        raise invalid("command", "is required and must be a command name")
    if name not in COMMANDS:
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise Rejected(Code.UNKNOWN_COMMAND, f"command: no command named {shown!r}", "command")
    fields = _parse_fields(raw, {**COMMON, **COMMANDS[name]})
    if name == "adjust_interval" and not (
            fields["min_days"] <= fields["target_days"] <= fields["max_days"]):
        raise invalid("target_days", "needs min_days <= target_days <= max_days")
    if "planned_at" in fields and fields["planned_at"] < fields["at"]:
        raise invalid("planned_at", "must not be before at")
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
