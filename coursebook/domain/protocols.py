"""Catalogues: the protocols and safety parameters, as versioned data (TOML), not constants.

A catalogue has a `name`, an integer `version`, a protocol per indication it covers and
optional safety parameters (`Safety`). Its `digest` is the SHA-256 of its canonical
content (`Catalogue.content`: every default spelt out, lists in lower case, as JSON with
sorted keys), so the same rules always have the same digest, however the file is laid
out. The engine ships `default@1` (the protocols, no safety parameter) and `default@2`
(the same protocols and the six parameters); a clinic may write its own
(docs/catalogues.md). A file that is not a valid catalogue raises `CatalogueError`
naming the field at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from coursebook.domain.values import Phase, Protocol, SpacingRule
from coursebook.errors import CoursebookError

__all__ = ["INDICATIONS", "NEWEST_DEFAULT", "SAFETY_PARAMETERS",
           "SHIPPED", "Catalogue", "CatalogueError", "FollowUpRule", "Safety",
           "default_catalogue", "load_catalogue", "shipped_catalogue"]

INDICATIONS = ("skin_rejuvenation", "hair_restoration", "fat_reduction", "cellulite",
               "pigmentation")

SHIPPED = {"default@1": "catalogue/default.toml", "default@2": "catalogue/default-2.toml"}
"""The catalogues in the package, by reference (`name@version`)."""
NEWEST_DEFAULT = "default@2"
"""What a new store adopts when none is named."""

SAFETY_PARAMETERS = ("below_protocol_min_needs_physician", "serious_reaction_kinds",
                     "blood_thinners", "screening_valid_days", "follow_up",
                     "aftercare_required")
"""The safety parameters a catalogue may set, each off when absent."""

REACTION_KINDS = ("redness", "swelling", "bruising", "tenderness", "nodules", "infection",
                  "allergic_reaction", "necrosis", "other")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class CatalogueError(CoursebookError):
    """A catalogue file that is not valid: `field` names the place at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@attrs.frozen
class FollowUpRule:
    """A follow-up of session `after_session` is due `due_days` after its local date, and
    missed once `grace_days` more have passed without one."""

    after_session: int
    due_days: int
    grace_days: int

    def as_dict(self) -> dict[str, int]:
        return {"after_session": self.after_session, "due_days": self.due_days,
                "grace_days": self.grace_days}


@attrs.frozen
class Safety:
    """The safety parameters of a catalogue; each is off at its default."""

    below_protocol_min_needs_physician: bool = False
    serious_reaction_kinds: tuple[str, ...] = ()
    blood_thinners: tuple[str, ...] = ()
    screening_valid_days: int | None = None
    follow_up: FollowUpRule | None = None
    aftercare_required: bool = False

    def __deepcopy__(self, memo: dict[int, Any]) -> Safety:
        """Immutable all the way down: a copy of an aggregate may share it."""
        return self

    def as_dict(self) -> dict[str, Any]:
        """The parameters set, by name (absent ones omitted): the stored form too."""
        out: dict[str, Any] = {}
        if self.below_protocol_min_needs_physician:
            out["below_protocol_min_needs_physician"] = True
        if self.serious_reaction_kinds:
            out["serious_reaction_kinds"] = list(self.serious_reaction_kinds)
        if self.blood_thinners:
            out["blood_thinners"] = list(self.blood_thinners)
        if self.screening_valid_days is not None:
            out["screening_valid_days"] = self.screening_valid_days
        if self.follow_up is not None:
            out["follow_up"] = self.follow_up.as_dict()
        if self.aftercare_required:
            out["aftercare_required"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Safety:
        """From the stored form (already valid: `_safety` checked it when adopted)."""
        if not data:
            return NO_SAFETY
        follow_up = data.get("follow_up")
        return cls(
            below_protocol_min_needs_physician=bool(
                data.get("below_protocol_min_needs_physician", False)),
            serious_reaction_kinds=tuple(data.get("serious_reaction_kinds", ())),
            blood_thinners=tuple(data.get("blood_thinners", ())),
            screening_valid_days=data.get("screening_valid_days"),
            follow_up=None if follow_up is None else FollowUpRule(**follow_up),
            aftercare_required=bool(data.get("aftercare_required", False)))


NO_SAFETY = Safety()


class Catalogue:
    """Protocols by indication and safety parameters, from one catalogue of one version."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        """`data`: a parsed catalogue file, or the canonical content of one (as stored
        when adopted). Raises `CatalogueError` naming the field at fault."""
        self.content = _canonical(data)
        self.name: str = self.content["name"]
        self.version: int = self.content["version"]
        self.safety = Safety.from_dict(self.content["safety"])
        self.digest = hashlib.sha256(json.dumps(
            self.content, sort_keys=True, separators=(",", ":"),
            ensure_ascii=False).encode("utf-8")).hexdigest()
        self.protocols: dict[str, Protocol] = {
            indication: _protocol(self.name, self.version, indication, entry)
            for indication, entry in self.content["protocols"].items()}

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def identity(self) -> dict[str, Any]:
        """`{"name", "version", "digest"}`: what a course records of its catalogue."""
        return {"name": self.name, "version": self.version, "digest": self.digest}

    @classmethod
    def from_file(cls, path: Path) -> Catalogue:
        import tomllib  # here: only a catalogue being read needs the TOML parser

        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except OSError as error:
            raise CatalogueError("", f"cannot read {path.name}: "
                                 f"{error.strerror or error}") from None
        except tomllib.TOMLDecodeError as error:
            raise CatalogueError("", f"{path.name} is not valid TOML: {error}") from None
        return cls(data)

    def get(self, indication: str) -> Protocol | None:
        return self.protocols.get(indication)


def _protocol(name: str, version: int, indication: str, entry: Mapping[str, Any]) -> Protocol:
    phases = []
    for i, phase in enumerate(entry["phases"], start=1):
        rule = SpacingRule(phase["min_days"], phase["target_days"], phase["max_days"],
                           source=f"{name}/{indication} v{version} phase {i}")
        phases.append(Phase(first=phase["first"], last=phase["last"], rule=rule))
    maintenance = entry["maintenance"]
    return Protocol(
        indication=indication, catalogue=name, version=version,
        default_sessions=entry["default_sessions"],
        min_planned_sessions=entry["min_planned_sessions"],
        max_planned_sessions=entry["max_planned_sessions"],
        max_extended_sessions=entry["max_extended_sessions"],
        phases=phases,
        maintenance=None if maintenance is None else SpacingRule(
            maintenance["min_days"], maintenance["target_days"], maintenance["max_days"],
            source=f"{name}/{indication} v{version} maintenance"))


# -- validation: the file's fields, each checked with the field named -------------------
def _fail(field: str, message: str) -> CatalogueError:
    return CatalogueError(field, message)


def _table(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(field, "must be a table")
    return value


def _only(table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(f"{prefix}{key}", "is not a catalogue field")


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _fail(field, f"must be an integer from {lo} to {hi}")
    return value


def _bool(value: Any, field: str) -> bool:
    if type(value) is not bool:
        raise _fail(field, "must be true or false")
    return value


def _words(value: Any, field: str, *, choices: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(value, list):
        raise _fail(field, "must be a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(f"{field}[{i}]", "must be a non-empty string")
        word = item.strip().casefold()
        if choices is not None and word not in choices:
            raise _fail(f"{field}[{i}]", f"must be one of {', '.join(choices)}")
        if word not in out:
            out.append(word)
    return out


def _rule(value: Any, field: str, extra: tuple[str, ...] = ()) -> dict[str, int]:
    table = _table(value, field)
    _only(table, ("min_days", "target_days", "max_days", *extra), f"{field}.")
    rule = {key: _int(table.get(key), f"{field}.{key}", 1, 365)
            for key in ("min_days", "target_days", "max_days")}
    if not rule["min_days"] <= rule["target_days"] <= rule["max_days"]:
        raise _fail(f"{field}.target_days", "needs min_days <= target_days <= max_days")
    return rule


_PROTOCOL_FIELDS = ("default_sessions", "min_planned_sessions", "max_planned_sessions",
                    "max_extended_sessions", "phases", "maintenance")
_PLAN_FIELDS = ("min_planned_sessions", "max_planned_sessions", "max_extended_sessions")
_PLAN_DEFAULTS = {"min_planned_sessions": 3, "max_planned_sessions": 10,
                  "max_extended_sessions": 20}


def _protocol_content(entry: Any, field: str, defaults: Mapping[str, int]) -> dict[str, Any]:
    table = _table(entry, field)
    _only(table, _PROTOCOL_FIELDS, f"{field}.")
    plan = {key: _int(table.get(key, defaults[key]), f"{field}.{key}", 1, 20)
            for key in _PLAN_FIELDS}
    if not plan["min_planned_sessions"] <= plan["max_planned_sessions"] \
            <= plan["max_extended_sessions"]:
        raise _fail(f"{field}.max_planned_sessions", "needs min_planned_sessions <= "
                    "max_planned_sessions <= max_extended_sessions")
    default = _int(table.get("default_sessions"), f"{field}.default_sessions",
                   plan["min_planned_sessions"], plan["max_planned_sessions"])
    raw_phases = table.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise _fail(f"{field}.phases", "must be a list of at least one phase")
    phases: list[dict[str, Any]] = []
    expected_first = 1
    for i, raw in enumerate(raw_phases):
        where = f"{field}.phases[{i}]"
        rule = _rule(raw, where, extra=("first", "last"))
        first = _int(raw.get("first"), f"{where}.first", 1, 1000)
        if first != expected_first:
            raise _fail(f"{where}.first", f"must be {expected_first}: phases cover every "
                        "session from 1, in order")
        last_phase = i == len(raw_phases) - 1
        last = raw.get("last")
        if last is not None:
            last = _int(last, f"{where}.last", first, 1000)
        elif not last_phase:
            raise _fail(f"{where}.last", "is required but on the last phase")
        phases.append({"first": first, "last": last, **rule})
        expected_first = (last or first) + 1
    maintenance = table.get("maintenance")
    return {"default_sessions": default, **plan, "phases": phases,
            "maintenance": None if maintenance is None
            else _rule(maintenance, f"{field}.maintenance")}


def _safety(value: Any) -> dict[str, Any]:
    table = _table(value, "safety")
    _only(table, SAFETY_PARAMETERS, "safety.")
    out: dict[str, Any] = {}
    if "below_protocol_min_needs_physician" in table and _bool(
            table["below_protocol_min_needs_physician"],
            "safety.below_protocol_min_needs_physician"):
        out["below_protocol_min_needs_physician"] = True
    if "serious_reaction_kinds" in table:
        kinds = _words(table["serious_reaction_kinds"], "safety.serious_reaction_kinds",
                       choices=REACTION_KINDS)
        if kinds:
            out["serious_reaction_kinds"] = kinds
    if "blood_thinners" in table:
        names = _words(table["blood_thinners"], "safety.blood_thinners")
        if names:
            out["blood_thinners"] = names
    if "screening_valid_days" in table:
        out["screening_valid_days"] = _int(table["screening_valid_days"],
                                           "safety.screening_valid_days", 1, 3650)
    if "follow_up" in table:
        follow_up = _table(table["follow_up"], "safety.follow_up")
        _only(follow_up, ("after_session", "due_days", "grace_days"), "safety.follow_up.")
        out["follow_up"] = {
            "after_session": _int(follow_up.get("after_session"),
                                  "safety.follow_up.after_session", 1, 20),
            "due_days": _int(follow_up.get("due_days"), "safety.follow_up.due_days", 0, 365),
            "grace_days": _int(follow_up.get("grace_days", 0), "safety.follow_up.grace_days",
                               0, 365)}
    if "aftercare_required" in table and _bool(table["aftercare_required"],
                                               "safety.aftercare_required"):
        out["aftercare_required"] = True
    return out


def _canonical(data: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue's canonical content, every field checked (`CatalogueError`)."""
    _table(data, "")
    _only(data, ("name", "version", "defaults", "protocols", "safety"), "")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail("name", "must be 1-64 characters of a-z, 0-9, '_' and '-', starting "
                    "with a letter or digit")
    version = _int(data.get("version"), "version", 1, 1_000_000)
    defaults_table = _table(data.get("defaults", {}), "defaults")
    _only(defaults_table, _PLAN_FIELDS, "defaults.")
    defaults = {key: _int(defaults_table.get(key, fallback), f"defaults.{key}", 1, 20)
                for key, fallback in _PLAN_DEFAULTS.items()}
    protocols = _table(data.get("protocols"), "protocols")
    if not protocols:
        raise _fail("protocols", "must cover at least one indication")
    content: dict[str, Any] = {}
    for indication, entry in protocols.items():
        if indication not in INDICATIONS:
            raise _fail(f"protocols.{indication}",
                        f"is not an indication (one of {', '.join(INDICATIONS)})")
        content[indication] = _protocol_content(entry, f"protocols.{indication}", defaults)
    return {"name": name, "version": version, "protocols": content,
            "safety": _safety(data.get("safety", {}))}


# -- the shipped catalogues ------------------------------------------------------------
_SHIPPED_CACHE: dict[str, Catalogue] = {}


def shipped_catalogue(ref: str) -> Catalogue | None:
    """A catalogue shipped in the package (`default@1`, `default@2`), or None."""
    if ref not in SHIPPED:
        return None
    if ref not in _SHIPPED_CACHE:
        import tomllib
        from importlib import resources

        text = resources.files("coursebook.domain").joinpath(SHIPPED[ref]).read_text(
            encoding="utf-8")
        _SHIPPED_CACHE[ref] = Catalogue(tomllib.loads(text))
    return _SHIPPED_CACHE[ref]


def load_catalogue(ref: str) -> Catalogue:
    """`ref` as a shipped catalogue (`default@N`) or a TOML file's path."""
    shipped = shipped_catalogue(ref)
    if shipped is not None:
        return shipped
    path = Path(ref)
    if not path.is_file():
        raise CatalogueError("", f"{ref!r} is neither a shipped catalogue "
                             f"({', '.join(SHIPPED)}) nor a catalogue file")
    return Catalogue.from_file(path)


def default_catalogue() -> Catalogue:
    """`default@1`: the protocols of the first version, with no safety parameter."""
    found = shipped_catalogue("default@1")
    assert found is not None
    return found
