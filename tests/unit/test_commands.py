"""Command parsing (CONTRACT section 3): every malformed command is INVALID, naming the field."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from coursebook.domain.commands import (
    COMMANDS,
    canonical_body,
    parse_command,
    read_command_id,
)
from coursebook.domain.store_records import body_digest
from coursebook.errors import Code, Rejected
from tests.builders import PATIENT, product, screening

AT = "2026-09-01T09:00:00+02:00"
COMMON = {"command_id": "c-1", "at": AT, "actor": "dr-ada"}

VALID: dict[str, dict[str, Any]] = {
    "register_practitioner": {"practitioner_id": "dr-ada", "name": "Ada Lovelace",
                              "role": "physician", "license_number": "L-1",
                              "license_expires_on": "2030-01-01"},
    "renew_license": {"practitioner_id": "dr-ada", "license_number": "L-2",
                      "license_expires_on": "2031-01-01"},
    "open_course": {"course_id": "C1", "patient_ref": "P1", "indication": "cellulite",
                    "planned_sessions": 6, "patient": PATIENT},
    "record_consultation": {"course_id": "C1", "consent": True,
                            "screening": screening(notes="fine")},
    "override_contraindication": {"course_id": "C1", "code": "PREGNANCY",
                                  "justification": "benefit outweighs the risk here"},
    "schedule_session": {"course_id": "C1", "planned_at": "2026-09-02T09:00:00+02:00",
                         "session_no": 1, "practitioner_id": "dr-ada",
                         "spacing_override_reason": "patient leaves abroad"},
    "reschedule_session": {"course_id": "C1", "session_no": 1,
                           "planned_at": "2026-09-03T09:00:00+02:00", "reason": "asked"},
    "cancel_session": {"course_id": "C1", "session_no": 1, "reason": "ill"},
    "give_session": {"course_id": "C1", "session_no": 1, "products": [product()],
                     "areas": ["face"], "dose_ml": 2.5, "anaesthetic": None},
    "report_reaction": {"course_id": "C1", "session_no": 1, "kind": "bruising",
                        "severity": 2, "notes": "small"},
    "review_reaction": {"course_id": "C1", "session_no": 1, "decision": "continue"},
    "record_follow_up": {"course_id": "C1", "session_no": 1, "outcome": "as_expected"},
    "withdraw_consent": {"course_id": "C1"},
    "adjust_interval": {"course_id": "C1", "min_days": 10, "target_days": 12,
                        "max_days": 20, "reason": "slow healing observed"},
    "extend_plan": {"course_id": "C1", "planned_sessions": 8, "reason": "good response"},
    "pause_course": {"course_id": "C1", "reason": "holiday"},
    "resume_course": {"course_id": "C1"},
    "complete_course": {"course_id": "C1"},
    "discontinue_course": {"course_id": "C1", "reason": "moved away"},
    "erase_patient": {"patient_ref": "P1", "reason": "GDPR request"},
}


def body(name: str, /, **changes: Any) -> dict[str, Any]:
    raw = {"command": name, **COMMON, **copy.deepcopy(VALID[name])}
    raw.update(changes)
    return raw


def without(name: str, field: str) -> dict[str, Any]:
    raw = body(name)
    del raw[field]
    return raw


def invalid_at(raw: Any, field: str | None = None) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_command(raw)
    assert info.value.code == Code.INVALID, info.value
    if field is not None:
        assert info.value.field == field, info.value
        assert field.split("[")[0].split(".")[0] in info.value.message
    return info.value


def test_the_valid_examples_cover_every_command() -> None:
    assert set(VALID) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_command_parses_in_its_json_form(name: str) -> None:
    parsed = parse_command(body(name))
    assert parsed.name == name
    assert parsed.command_id == "c-1"
    assert parsed.at == dt.datetime(2026, 9, 1, 7, 0, tzinfo=dt.UTC)
    assert parsed.actor == "dr-ada"


def test_optional_fields_may_be_left_out() -> None:
    parse_command(without("open_course", "planned_sessions"))
    parse_command(without("open_course", "patient"))
    parse_command(without("schedule_session", "session_no"))
    parse_command(without("give_session", "session_no"))
    raw = body("record_consultation")
    del raw["screening"]["notes"]
    parse_command(raw)


def test_python_callers_may_pass_typed_dates_and_timestamps() -> None:
    raw = body("register_practitioner", at=dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC),
               license_expires_on=dt.date(2030, 1, 1))
    parsed = parse_command(raw)
    assert parsed.fields["license_expires_on"] == dt.date(2030, 1, 1)


class TestCommandId:
    @pytest.mark.parametrize("command_id", [
        "a", "A-z_0.9:x", "x" * 128, "2026-09-01:import:17",
    ])
    def test_accepts_1_to_128_characters_of_the_allowed_set(self, command_id: str) -> None:
        assert read_command_id({"command_id": command_id}) == command_id

    @pytest.mark.parametrize("command_id", [
        "", " ", "x" * 129, "a b", "a/b", "é", "a\n", "a\x00", "a,b", 17, 1.5, True, None,
        ["a"], {"a": 1},
    ])
    def test_refuses_anything_else(self, command_id: Any) -> None:
        with pytest.raises(Rejected) as info:
            read_command_id({"command_id": command_id})
        assert info.value.code == Code.INVALID
        assert info.value.field == "command_id"

    def test_a_missing_command_id_is_invalid(self) -> None:
        with pytest.raises(Rejected) as info:
            read_command_id({"command": "complete_course"})
        assert info.value.field == "command_id"

    @pytest.mark.parametrize("raw", [[], "text", 3, None, [{"command_id": "a"}]])
    def test_a_command_must_be_a_json_object(self, raw: Any) -> None:
        with pytest.raises(Rejected) as info:
            read_command_id(raw)
        assert info.value.code == Code.INVALID


class TestCommandName:
    def test_an_unknown_command_name_is_unknown_command(self) -> None:
        with pytest.raises(Rejected) as info:
            parse_command({**COMMON, "command": "give_sessions"})
        assert info.value.code == Code.UNKNOWN_COMMAND

    @pytest.mark.parametrize("name", [None, "", "  ", 3, ["give_session"]])
    def test_a_missing_or_non_text_name_is_invalid(self, name: Any) -> None:
        invalid_at({**COMMON, "command": name}, "command")

    def test_a_huge_unknown_name_is_cut_short_in_the_message(self) -> None:
        with pytest.raises(Rejected) as info:
            parse_command({**COMMON, "command": "x" * 100_000})
        assert len(info.value.message) < 200


@pytest.mark.parametrize(("name", "field"), [
    (name, field) for name, fields in VALID.items() for field in fields
    if COMMANDS[name][field].required
] + [(name, field) for name in VALID for field in ("at", "actor")])
def test_a_missing_required_field_is_invalid_and_named(name: str, field: str) -> None:
    invalid_at(without(name, field), field)


@pytest.mark.parametrize("name", sorted(VALID))
def test_an_unknown_top_level_field_is_invalid(name: str) -> None:
    invalid_at(body(name, colour="blue"), "colour")


@pytest.mark.parametrize(("name", "path"), [
    ("record_consultation", ("screening",)),
    ("open_course", ("patient",)),
    ("give_session", ("products", 0)),
])
def test_an_unknown_nested_field_is_invalid_and_named_by_its_path(
        name: str, path: tuple[Any, ...]) -> None:
    raw = body(name)
    target = raw
    for key in path:
        target = target[key]
    target["smoker"] = True
    rejection = invalid_at(raw)
    assert rejection.field is not None
    assert rejection.field.endswith("smoker")
    assert rejection.field.startswith(str(path[0]))


@pytest.mark.parametrize("answer", [
    "pregnant", "breastfeeding", "active_infection_at_site", "bleeding_disorder",
    "anticoagulants", "autoimmune_disease", "diabetes", "heart_condition", "allergies",
    "medications",
])
def test_a_missing_screening_answer_is_invalid_because_unknown_is_not_no(answer: str) -> None:
    raw = body("record_consultation")
    del raw["screening"][answer]
    invalid_at(raw, f"screening.{answer}")


@pytest.mark.parametrize("answer", ["pregnant", "diabetes"])
@pytest.mark.parametrize("value", [None, 0, 1, "no", "false", []])
def test_a_screening_flag_must_be_a_boolean(answer: str, value: Any) -> None:
    raw = body("record_consultation")
    raw["screening"][answer] = value
    invalid_at(raw, f"screening.{answer}")


@pytest.mark.parametrize(("name", "field", "value"), [
    ("open_course", "planned_sessions", "6"),
    ("open_course", "planned_sessions", True),
    ("open_course", "planned_sessions", 6.5),
    ("open_course", "planned_sessions", 0),
    ("open_course", "planned_sessions", -1),
    ("open_course", "planned_sessions", 10**30),
    ("open_course", "indication", "botox"),
    ("open_course", "patient", "Jeanne"),
    ("open_course", "patient_ref", 12),
    ("register_practitioner", "role", "surgeon"),
    ("register_practitioner", "role", "Physician"),
    ("register_practitioner", "license_expires_on", "2030-02-30"),
    ("register_practitioner", "license_expires_on", "01/01/2030"),
    ("register_practitioner", "license_expires_on", "2030-01-01T00:00:00Z"),
    ("register_practitioner", "license_expires_on", 20300101),
    ("record_consultation", "consent", "yes"),
    ("record_consultation", "consent", 1),
    ("record_consultation", "consent", None),
    ("record_consultation", "screening", []),
    ("override_contraindication", "justification", "too short reason"),
    ("schedule_session", "session_no", 0),
    ("schedule_session", "session_no", "1"),
    ("schedule_session", "spacing_override_reason", "short"),
    ("schedule_session", "planned_at", "tomorrow"),
    ("give_session", "products", []),
    ("give_session", "products", product()),
    ("give_session", "areas", []),
    ("give_session", "areas", "face"),
    ("give_session", "dose_ml", 0),
    ("give_session", "dose_ml", -1.0),
    ("give_session", "dose_ml", 20.0001),
    ("give_session", "dose_ml", "2"),
    ("give_session", "dose_ml", True),
    ("give_session", "dose_ml", False),
    ("give_session", "dose_ml", None),
    ("give_session", "dose_ml", float("nan")),
    ("give_session", "dose_ml", float("inf")),
    ("give_session", "dose_ml", "NaN"),
    ("give_session", "anaesthetic", ""),
    ("give_session", "anaesthetic", 5),
    ("give_session", "spacing_override_reason", "too soon"),
    ("report_reaction", "severity", 0),
    ("report_reaction", "severity", 6),
    ("report_reaction", "severity", 2.5),
    ("report_reaction", "severity", True),
    ("report_reaction", "kind", "itching"),
    ("review_reaction", "decision", "stop"),
    ("adjust_interval", "min_days", 0),
    ("adjust_interval", "max_days", 366),
    ("adjust_interval", "reason", "short"),
    ("adjust_interval", "target_days", float("nan")),
    ("extend_plan", "planned_sessions", "8"),
    ("resume_course", "reason", ""),
    ("erase_patient", "reason", "   "),
])
def test_a_wrong_type_or_out_of_range_value_is_invalid_and_named(
        name: str, field: str, value: Any) -> None:
    invalid_at(body(name, **{field: value}), field)


@pytest.mark.parametrize(("name", "field"), [
    ("register_practitioner", "name"), ("register_practitioner", "practitioner_id"),
    ("register_practitioner", "license_number"), ("open_course", "course_id"),
    ("open_course", "patient_ref"), ("cancel_session", "reason"),
    ("pause_course", "reason"), ("discontinue_course", "reason"), ("extend_plan", "reason"),
    ("override_contraindication", "code"), ("erase_patient", "patient_ref"),
])
@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_an_empty_or_blank_string_where_text_is_required_is_invalid(
        name: str, field: str, value: str) -> None:
    invalid_at(body(name, **{field: value}), field)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_actor_is_invalid(value: str) -> None:
    invalid_at(body("open_course", actor=value), "actor")


@pytest.mark.parametrize(("name", "field"), [
    ("register_practitioner", "name"), ("open_course", "course_id"),
    ("pause_course", "reason"), ("record_consultation", "screening.notes"),
    ("give_session", "products[0].name"), ("give_session", "areas[0]"),
    ("open_course", "patient.name"), ("record_consultation", "screening.allergies[0]"),
])
def test_a_huge_string_is_invalid(name: str, field: str) -> None:
    huge = "x" * 1_000_000
    raw = body(name)
    match field:
        case "screening.notes":
            raw["screening"]["notes"] = huge
        case "products[0].name":
            raw["products"][0]["name"] = huge
        case "areas[0]":
            raw["areas"] = [huge]
        case "patient.name":
            raw["patient"]["name"] = huge
        case "screening.allergies[0]":
            raw["screening"]["allergies"] = [huge]
        case _:
            raw[field] = huge
    rejection = invalid_at(raw, field)
    assert len(rejection.message) < 200


class TestTextLimits:
    def test_an_id_of_128_characters_is_accepted_and_129_refused(self) -> None:
        parse_command(body("open_course", course_id="c" * 128))
        invalid_at(body("open_course", course_id="c" * 129), "course_id")

    @pytest.mark.parametrize("value", ["C\n1", "C\t1", "C\x001", "C\x7f1"])
    def test_an_id_with_a_control_character_is_invalid(self, value: str) -> None:
        invalid_at(body("open_course", course_id=value), "course_id")

    def test_free_text_up_to_2000_characters_is_accepted(self) -> None:
        parse_command(body("pause_course", reason="r" * 2000))
        invalid_at(body("pause_course", reason="r" * 2001), "reason")

    def test_free_text_must_not_contain_nul(self) -> None:
        invalid_at(body("pause_course", reason="holiday\x00"), "reason")

    def test_a_name_up_to_200_characters_is_accepted(self) -> None:
        parse_command(body("register_practitioner", name="n" * 200))
        invalid_at(body("register_practitioner", name="n" * 201), "name")

    def test_a_list_of_up_to_50_items_is_accepted(self) -> None:
        parse_command(body("give_session", areas=["face"] * 50))
        invalid_at(body("give_session", areas=["face"] * 51), "areas")


def test_an_empty_area_is_invalid_and_named_by_its_index() -> None:
    invalid_at(body("give_session", areas=["face", ""]), "areas[1]")


def test_a_huge_list_is_invalid() -> None:
    raw = body("give_session", areas=["face"] * 10_000)
    invalid_at(raw, "areas")


def test_a_huge_unknown_field_name_is_not_echoed_whole() -> None:
    rejection = invalid_at(body("complete_course", **{"k" * 10_000: 1}))
    assert len(rejection.message) < 200


class TestTimestamps:
    @pytest.mark.parametrize("value", [
        "2026-09-01T09:00:00", "2026-09-01 09:00:00", "2026-09-01", "2026-09-01T09:00",
    ])
    def test_a_naive_timestamp_is_invalid(self, value: str) -> None:
        rejection = invalid_at(body("open_course", at=value), "at")
        assert "offset" in rejection.message

    def test_a_naive_python_datetime_is_invalid(self) -> None:
        invalid_at(body("open_course", at=dt.datetime(2026, 9, 1, 9)), "at")

    @pytest.mark.parametrize("value", [
        "not a time", "2026-13-01T09:00:00Z", "2026-09-01T25:00:00Z", 1788249600, None,
        True, "9" * 100, "",
    ])
    def test_a_malformed_timestamp_is_invalid(self, value: Any) -> None:
        invalid_at(body("open_course", at=value), "at")

    @pytest.mark.parametrize("value", ["2026-09-01T09:00:00Z", "2026-09-01T09:00:00+05:45",
                                       "2026-09-01T09:00:00.123456-03:00"])
    def test_any_utc_offset_is_accepted(self, value: str) -> None:
        assert parse_command(body("open_course", at=value)).at.utcoffset() is not None

    @pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"])
    def test_an_instant_at_the_start_of_the_calendar_is_out_of_range(self, value: str) -> None:
        invalid_at(body("open_course", at=value), "at")

    @pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "9999-12-31T23:00:00Z",
                                       "9999-12-30T12:00:00+00:00"])
    def test_an_instant_at_the_end_of_the_calendar_is_out_of_range(self, value: str) -> None:
        invalid_at(body("schedule_session", planned_at=value), "planned_at")

    def test_a_naive_planned_at_is_invalid(self) -> None:
        invalid_at(body("schedule_session", planned_at="2026-09-02T09:00:00"), "planned_at")

    def test_planned_at_before_at_is_invalid(self) -> None:
        invalid_at(body("schedule_session", planned_at="2026-09-01T06:59:59Z"), "planned_at")

    def test_planned_at_equal_to_at_is_accepted(self) -> None:
        parse_command(body("schedule_session", planned_at="2026-09-01T07:00:00Z"))

    def test_planned_at_before_at_is_invalid_for_rescheduling_too(self) -> None:
        invalid_at(body("reschedule_session", planned_at="2026-08-01T09:00:00Z"),
                   "planned_at")

    def test_the_product_expiry_must_be_a_date(self) -> None:
        invalid_at(body("give_session", products=[product(expires_on="soon")]),
                   "products[0].expires_on")


class TestAdjustInterval:
    def test_min_above_target_is_invalid(self) -> None:
        invalid_at(body("adjust_interval", min_days=13, target_days=12), "target_days")

    def test_target_above_max_is_invalid(self) -> None:
        invalid_at(body("adjust_interval", target_days=21, max_days=20), "target_days")

    def test_all_three_equal_is_accepted(self) -> None:
        parse_command(body("adjust_interval", min_days=14, target_days=14, max_days=14))

    def test_integral_floats_are_integers(self) -> None:
        parsed = parse_command(body("adjust_interval", min_days=10.0))
        assert parsed.fields["min_days"] == 10
        assert isinstance(parsed.fields["min_days"], int)


class TestHugeNumbers:
    def test_an_integer_too_large_for_a_float_is_an_invalid_dose(self) -> None:
        invalid_at(body("give_session", dose_ml=10**400), "dose_ml")

    def test_an_integer_beyond_64_bits_still_has_a_digest(self) -> None:
        for value in (10**30, -(10**30), 1e23, 10**400):
            assert body_digest(canonical_body({"planned_sessions": value}))

    def test_an_integer_beyond_64_bits_is_out_of_range(self) -> None:
        invalid_at(body("open_course", planned_sessions=10**30), "planned_sessions")


class TestExpectedVersion:
    @pytest.mark.parametrize("value", [-1, "3", 2.5, True])
    def test_must_be_a_non_negative_integer(self, value: Any) -> None:
        invalid_at(body("complete_course", expected_version=value), "expected_version")

    def test_is_read_when_given(self) -> None:
        assert parse_command(body("complete_course", expected_version=4)).expected_version == 4


class TestCanonicalBody:
    def test_key_order_does_not_matter(self) -> None:
        a = {"command": "x", "command_id": "1", "screening": {"a": 1, "b": [1, 2]}}
        b = {"screening": {"b": [1, 2], "a": 1}, "command_id": "1", "command": "x"}
        assert canonical_body(a) == canonical_body(b)

    def test_two_and_two_point_zero_are_the_same_number(self) -> None:
        assert canonical_body({"dose_ml": 2}) == canonical_body({"dose_ml": 2.0})

    def test_a_different_value_is_a_different_body(self) -> None:
        def digest(raw: Any) -> str:
            return body_digest(canonical_body(raw))

        assert digest({"dose_ml": 2}) != digest({"dose_ml": 2.5})
        assert digest({"consent": True}) != digest({"consent": 1})
        assert digest({"l": [1, 2]}) != digest({"l": [2, 1]})
        assert digest({"a": None}) != digest({})
