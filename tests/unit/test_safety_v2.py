"""The safety parameters of `default@2`, rule by rule, and the same history under
`default@1` giving the answers of version 1 (catalogues: docs/catalogues.md).

`clinic2` is a store under `default@2`, `clinic` one under `default@1`; both in Paris time
with the clock at 2026-11-01 and the course C1 (skin rejuvenation, 14/21/28 days)
opened on day 0 = 2026-09-01.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from coursebook.clock import FixedClock
from coursebook.domain.protocols import (
    Catalogue,
    CatalogueError,
    load_catalogue,
    shipped_catalogue,
)
from coursebook.domain.schema import DEFAULT_1
from coursebook.errors import Code
from tests.builders import DAY, T0, Clinic, day, product, rejected

AS_OF = "2026-11-01T12:00:00Z"


def codes(clinic: Clinic, as_of: str = AS_OF) -> list[tuple[str, str | None, int | None]]:
    return sorted((f["code"], f["course_id"], f["session_no"])
                  for f in clinic.app.compliance(as_of=as_of)["findings"])


def findings(clinic: Clinic, code: str, as_of: str = AS_OF) -> list[dict[str, Any]]:
    return [f for f in clinic.app.compliance(as_of=as_of)["findings"] if f["code"] == code]


# -- catalogues ----------------------------------------------------------------------------
class TestCatalogues:
    def test_the_shipped_catalogues_differ_only_by_version_and_safety(self) -> None:
        one, two = shipped_catalogue("default@1"), shipped_catalogue("default@2")
        assert one is not None
        assert two is not None
        assert (one.ref, two.ref) == ("default@1", "default@2")
        assert one.content["protocols"] == two.content["protocols"]
        assert one.content["safety"] == {}
        assert set(two.content["safety"]) == {
            "below_protocol_min_needs_physician", "serious_reaction_kinds",
            "blood_thinners", "screening_valid_days", "follow_up", "aftercare_required"}

    def test_the_digest_of_default_1_is_the_one_old_courses_are_given(self) -> None:
        one = shipped_catalogue("default@1")
        assert one is not None
        assert one.identity() == dict(DEFAULT_1)

    def test_the_digest_depends_on_content_not_on_layout(self) -> None:
        two = shipped_catalogue("default@2")
        assert two is not None
        shuffled = {"safety": dict(reversed(list(two.content["safety"].items()))),
                    "protocols": two.content["protocols"], "version": 2, "name": "default"}
        assert Catalogue(shuffled).digest == two.digest
        changed = {**two.content, "safety": {**two.content["safety"],
                                             "screening_valid_days": 90}}
        assert Catalogue(changed).digest != two.digest

    @pytest.mark.parametrize(("text", "field"), [
        ('name = "c"\nversion = 0\n', "version"),
        ('name = "c"\nversion = 1\n', "protocols"),
        ('name = "c"\nversion = 1\n[protocols.botox]\ndefault_sessions = 3\n',
         "protocols.botox"),
        ('name = "c"\nversion = 1\n[protocols.pigmentation]\ndefault_sessions = 4\n'
         'phases = [{first = 1, min_days = 20, target_days = 10, max_days = 30}]\n',
         "protocols.pigmentation.phases[0].target_days"),
        ('name = "c"\nversion = 1\n[protocols.pigmentation]\ndefault_sessions = 4\n'
         'phases = [{first = 1, min_days = 1, target_days = 2, max_days = 3}]\n'
         '[safety]\nscreening_valid_days = "soon"\n', "safety.screening_valid_days"),
        ('name = "c"\nversion = 1\n[protocols.pigmentation]\ndefault_sessions = 4\n'
         'phases = [{first = 1, min_days = 1, target_days = 2, max_days = 3}]\n'
         '[safety]\nserious_reaction_kinds = ["rash"]\n', "safety.serious_reaction_kinds[0]"),
        ('name = "c"\nversion = 1\n[protocols.pigmentation]\ndefault_sessions = 4\n'
         'phases = [{first = 1, min_days = 1, target_days = 2, max_days = 3}]\n'
         '[safety]\nfollow_up = {after_session = 1}\n', "safety.follow_up.due_days"),
        ('name = "c"\nversion = 1\nowner = "me"\n', "owner"),
    ])
    def test_a_file_that_is_not_a_catalogue_names_the_field(
            self, tmp_path: Any, text: str, field: str) -> None:
        path = tmp_path / "mine.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CatalogueError) as info:
            load_catalogue(str(path))
        assert info.value.field == field

    def test_a_clinic_catalogue_is_adopted_and_travels_with_its_courses(
            self, clinic: Clinic, tmp_path: Any) -> None:
        path = tmp_path / "ours.toml"
        path.write_text('name = "ours"\nversion = 3\n[protocols.pigmentation]\n'
                        'default_sessions = 4\nphases = [{first = 1, min_days = 10, '
                        'target_days = 20, max_days = 30}]\n[safety]\n'
                        'aftercare_required = true\n', encoding="utf-8")
        adopted = clinic.app.adopt_catalogue(str(path), actor="dr-ada",
                                             reason="our own pigmentation protocol")
        assert (adopted["name"], adopted["version"]) == ("ours", 3)
        assert clinic.app.catalogue()["safety"] == {"aftercare_required": True}
        with rejected(Code.INVALID, "indication"):
            clinic.open(indication="skin_rejuvenation")
        clinic.ready(indication="pigmentation")
        clinic.give()
        assert clinic.course()["protocol"] == {"name": "ours/pigmentation", "version": 3}
        path.unlink()  # the store keeps the content: the file is not needed again
        assert codes(clinic) == [("AFTERCARE_NOT_RECORDED", "C1", 1), ("OVERDUE", "C1", 2)]

    def test_a_changed_catalogue_under_an_adopted_name_and_version_is_refused(
            self, clinic: Clinic, tmp_path: Any) -> None:
        path = tmp_path / "ours.toml"
        body = ('name = "ours"\nversion = 1\n[protocols.pigmentation]\ndefault_sessions = 4\n'
                'phases = [{first = 1, min_days = 10, target_days = 20, max_days = 30}]\n')
        path.write_text(body, encoding="utf-8")
        clinic.app.adopt_catalogue(str(path), actor="dr-ada", reason="first version of ours")
        clinic.app.adopt_catalogue("default@2", actor="dr-ada", reason="back to default v2")
        path.write_text(body.replace("min_days = 10", "min_days = 9"), encoding="utf-8")
        with rejected(Code.INVALID, "catalogue"):
            clinic.app.adopt_catalogue(str(path), actor="dr-ada", reason="quietly changed")
        assert clinic.app.catalogue()["version"] == 2

    def test_adoption_needs_an_actor_and_a_reason_of_ten_characters(
            self, clinic: Clinic) -> None:
        with rejected(Code.INVALID, "reason"):
            clinic.app.adopt_catalogue("default@2", actor="dr-ada", reason="because")
        with rejected(Code.INVALID, "actor"):
            clinic.app.adopt_catalogue("default@2", actor=" ", reason="the new rules apply")

    def test_adopting_the_catalogue_in_force_records_nothing(self, clinic2: Clinic) -> None:
        before = len(clinic2.app.audit())
        first = clinic2.app.adopt_catalogue("default@2", actor="dr-ada",
                                            reason="adopt it once more")
        assert len(clinic2.app.audit()) == before
        assert first == {key: clinic2.app.catalogue()[key]
                         for key in ("name", "version", "digest", "adopted_at")}

    def test_a_store_under_another_catalogue_refuses_init_naming_another(
            self, clinic: Clinic) -> None:
        with rejected(Code.INVALID, "catalogue"):
            clinic.app.initialise(None, "default@2")
        clinic.app.initialise(None, "default@1")


# -- below_protocol_min_needs_physician ----------------------------------------------------
class TestBelowProtocolMinimum:
    def test_a_nurse_may_not_shorten_below_the_protocol_a_physician_may(
            self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give()
        with rejected(Code.NOT_AUTHORIZED, "min_days"):
            clinic2.run("adjust_interval", at=day(1, 12), actor="nurse-bo", course_id="C1",
                        min_days=13, target_days=14, max_days=21, reason="patient travels")
        clinic2.run("adjust_interval", at=day(1, 12), actor="nurse-bo", course_id="C1",
                    min_days=14, target_days=14, max_days=21, reason="equal is not below")
        clinic2.run("adjust_interval", at=day(1, 13), actor="dr-ada", course_id="C1",
                    min_days=7, target_days=10, max_days=14, reason="agreed with patient")

    def test_each_session_under_a_shorter_rule_is_a_finding_with_who_and_why(
            self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give(aftercare="AC-1")
        clinic2.run("adjust_interval", at=day(1, 13), actor="dr-ada", course_id="C1",
                    min_days=7, target_days=10, max_days=14, reason="agreed with patient")
        clinic2.give(at=day(8), aftercare="AC-1")
        [finding] = findings(clinic2, "INTERVAL_BELOW_PROTOCOL")
        assert (finding["session_no"], finding["severity"]) == (2, "warning")
        assert {k: finding["detail"][k] for k in ("protocol_min_days", "min_days",
                                                  "adjusted_by", "reason")} == {
            "protocol_min_days": 14, "min_days": 7, "adjusted_by": "dr-ada",
            "reason": "agreed with patient"}

    def test_default_1_lets_a_nurse_shorten_and_finds_nothing(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give()
        clinic.run("adjust_interval", at=day(1, 12), actor="nurse-bo", course_id="C1",
                   min_days=7, target_days=10, max_days=14, reason="patient travels")
        clinic.give(at=day(8))
        assert findings(clinic, "INTERVAL_BELOW_PROTOCOL") == []


# -- serious_reaction_kinds ---------------------------------------------------------------
class TestSeriousReactionKinds:
    @pytest.mark.parametrize("kind", ["infection", "allergic_reaction", "necrosis"])
    def test_a_serious_kind_of_any_severity_blocks_until_reviewed(
            self, clinic2: Clinic, kind: str) -> None:
        clinic2.ready()
        clinic2.give(aftercare="AC-1")
        clinic2.react(kind=kind, severity=1)
        assert clinic2.course()["blocked_by"] == ["REACTION_UNREVIEWED"]
        with rejected(Code.REACTION_UNREVIEWED):
            clinic2.give(at=day(15), aftercare="AC-1")
        assert [f["session_no"] for f in findings(clinic2, "SEVERE_REACTION")] == [1]
        assert [f["at"] for f in findings(clinic2, "REACTION_UNREVIEWED")] == [
            "2026-09-05T07:00:00Z"]  # 48 h after day 2, 09:00 in Paris
        clinic2.review()
        clinic2.give(at=day(15), aftercare="AC-1")

    def test_a_mild_ordinary_kind_blocks_nothing(self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give(aftercare="AC-1")
        clinic2.react(kind="bruising", severity=2)
        assert clinic2.course()["blocked_by"] == []
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic2.review()

    def test_default_1_judges_by_severity_alone(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give()
        clinic.react(kind="necrosis", severity=2)
        assert clinic.course()["blocked_by"] == []
        assert findings(clinic, "SEVERE_REACTION") == []


# -- blood_thinners -----------------------------------------------------------------------
class TestBloodThinners:
    def test_a_listed_medication_puts_anticoagulants_in_force_and_is_inconsistent(
            self, clinic2: Clinic) -> None:
        clinic2.open()
        clinic2.consult(medications=["Aspirin 75mg daily", "Vitamin D"])
        assert clinic2.course()["contraindications"]["relative"] == ["ANTICOAGULANTS"]
        report = clinic2.app.compliance(as_of=AS_OF)
        [finding] = [f for f in report["findings"] if f["code"] == "SCREENING_INCONSISTENT"]
        assert (finding["session_no"], finding["detail"]["code"],
                finding["detail"]["source"]) == (None, "ANTICOAGULANTS", "medications")
        assert "aspirin" not in str(report).casefold()

    def test_the_ticked_box_is_consistent_and_a_word_inside_another_is_no_match(
            self, clinic2: Clinic) -> None:
        clinic2.open()
        clinic2.consult(anticoagulants=True, medications=["warfarin 5 mg"])
        clinic2.open("C2", patient_ref="P2")
        clinic2.consult("C2", medications=["Heparinoid cream"])
        assert clinic2.course("C2")["contraindications"]["relative"] == []
        assert findings(clinic2, "SCREENING_INCONSISTENT") == []

    def test_default_1_reads_only_the_box(self, clinic: Clinic) -> None:
        clinic.open()
        clinic.consult(medications=["Aspirin 75mg daily"])
        assert clinic.course()["contraindications"]["relative"] == []
        assert findings(clinic, "SCREENING_INCONSISTENT") == []


# -- screening_valid_days -----------------------------------------------------------------
class TestScreeningValidDays:
    def test_the_window_shows_the_last_valid_day_and_a_new_consultation_renews_it(
            self, clinic2: Clinic, clock: FixedClock) -> None:
        clinic2.ready()
        assert clinic2.course()["next"]["screening_valid_until"] == "2027-02-28"
        assert "SCREENING_STALE" not in clinic2.course()["blocked_by"]
        clock.set(T0 + 300 * DAY)
        with rejected(Code.SCREENING_STALE):
            clinic2.give(at=day(181), aftercare="AC-1")
        clinic2.consult(at=day(181, 8))
        clinic2.give(at=day(181), aftercare="AC-1")
        assert clinic2.course()["next"]["screening_valid_until"] == "2027-08-28"


# -- follow_up ----------------------------------------------------------------------------
class TestFollowUp:
    def test_due_and_latest_follow_the_first_session(self, clinic2: Clinic) -> None:
        clinic2.ready()
        assert clinic2.course()["follow_up"] is None
        clinic2.give(aftercare="AC-1")  # day 1 = 09-02
        assert clinic2.course()["follow_up"] == {"session_no": 1, "due": "2026-09-16",
                                                 "latest": "2026-09-23", "done_at": None}

    def test_missed_only_after_the_grace_and_not_undone_by_a_late_follow_up(
            self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give(aftercare="AC-1")
        assert findings(clinic2, "FOLLOW_UP_MISSED", "2026-09-23T21:59:00Z") == []
        [missed] = findings(clinic2, "FOLLOW_UP_MISSED", "2026-09-23T22:00:00Z")
        assert (missed["session_no"], missed["at"], missed["detail"]["due"],
                missed["detail"]["latest"]) == (1, "2026-09-23T22:00:00Z", "2026-09-16",
                                                "2026-09-23")
        clinic2.run("record_follow_up", at=day(30), actor="nurse-bo", course_id="C1",
                    session_no=1, outcome="concern", notes="lumps at the site")
        assert len(findings(clinic2, "FOLLOW_UP_MISSED")) == 1
        assert clinic2.course()["follow_up"]["done_at"] == "2026-10-01T07:00:00Z"

    def test_a_follow_up_in_time_means_no_finding_whatever_the_status(
            self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give(aftercare="AC-1")
        clinic2.run("discontinue_course", at=day(2), course_id="C1", reason="moved away")
        clinic2.run("record_follow_up", at=day(22, 20), actor="nurse-bo", course_id="C1",
                    session_no=1, outcome="as_expected")
        assert findings(clinic2, "FOLLOW_UP_MISSED") == []

    def test_who_and_when_a_follow_up_may_be_recorded(self, clinic2: Clinic) -> None:
        clinic2.ready()
        with rejected(Code.NOT_FOUND, "session_no"):
            clinic2.run("record_follow_up", at=day(2), course_id="C1", session_no=1,
                        outcome="as_expected")
        clinic2.give(aftercare="AC-1")
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic2.run("record_follow_up", at=day(2), actor="aes-cy", course_id="C1",
                        session_no=1, outcome="as_expected")
        with rejected(Code.OUT_OF_ORDER, "at"):
            clinic2.run("record_follow_up", at=day(1, 8), course_id="C1", session_no=1,
                        outcome="as_expected")
        with rejected(Code.FUTURE_FACT, "at"):
            clinic2.run("record_follow_up", at=day(90), course_id="C1", session_no=1,
                        outcome="as_expected")

    def test_default_1_has_the_key_null_and_no_finding(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give()
        assert clinic.course()["follow_up"] is None
        assert findings(clinic, "FOLLOW_UP_MISSED") == []


# -- aftercare_required -------------------------------------------------------------------
class TestAftercare:
    def test_a_session_without_aftercare_is_an_info_finding(self, clinic2: Clinic) -> None:
        clinic2.ready()
        clinic2.give()
        clinic2.give(at=day(15), aftercare="AC-FACE v2")
        [finding] = findings(clinic2, "AFTERCARE_NOT_RECORDED")
        assert (finding["session_no"], finding["severity"]) == (1, "info")

    @pytest.mark.parametrize("aftercare", ["", "x" * 201])
    def test_aftercare_is_1_to_200_characters(self, clinic2: Clinic, aftercare: str) -> None:
        clinic2.ready()
        with rejected(Code.INVALID, "aftercare"):
            clinic2.give(aftercare=aftercare)

    def test_default_1_records_aftercare_and_requires_none(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.give(aftercare="AC-FACE v2")
        clinic.give(at=day(15))
        assert findings(clinic, "AFTERCARE_NOT_RECORDED") == []


# -- withdraw_consent ---------------------------------------------------------------------
class TestWithdrawConsent:
    def test_no_consent_until_a_consultation_with_consent(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("withdraw_consent", at=day(1, 8), actor="aes-cy", course_id="C1")
        assert clinic.course()["blocked_by"] == ["NO_CONSENT"]
        with rejected(Code.NO_CONSENT):
            clinic.give()
        with rejected(Code.NO_CONSENT):
            clinic.schedule(at=day(1, 9), planned_at=day(2))
        clinic.consult(at=day(1, 9))
        clinic.give(at=day(1, 10))

    def test_any_registered_practitioner_whatever_the_status(self, clinic: Clinic) -> None:
        clinic.ready()
        clinic.run("discontinue_course", at=day(1), course_id="C1", reason="moved away")
        with rejected(Code.NOT_AUTHORIZED, "actor"):
            clinic.run("withdraw_consent", at=day(2), actor="front-desk", course_id="C1")
        clinic.run("withdraw_consent", at=day(2), actor="aes-cy", course_id="C1",
                   reason="letter received")
        assert clinic.app.audit("C1")[-1]["event"] == "ConsentWithdrawn"


# -- the course of the issue, under default@2 ---------------------------------------------
def test_the_unsafe_course_is_refused_where_default_2_refuses_and_judged(
        clinic2: Clinic, clock: FixedClock) -> None:
    """A nurse shortens to 1/1/1 and gives sessions on consecutive days; the consultation
    lists aspirin with `anticoagulants` false; an allergic reaction and a necrosis, each of
    severity 2, after session 3, and the same product the next day. Under default@1 every
    command was accepted and compliance found nothing about them."""
    app = clinic2.app
    clinic2.open()
    clinic2.consult(actor="nurse-bo", medications=["aspirin 75mg daily"])
    with rejected(Code.NOT_AUTHORIZED, "min_days"):
        clinic2.run("adjust_interval", at=day(0, 10), actor="nurse-bo", course_id="C1",
                    min_days=1, target_days=1, max_days=1, reason="fast track requested")
    clinic2.run("adjust_interval", at=day(0, 10), actor="dr-ada", course_id="C1",
                min_days=1, target_days=1, max_days=1, reason="fast track requested")
    for n in (1, 2, 3):
        clinic2.give(at=day(n), actor="nurse-bo", aftercare="AC-1")
    clinic2.react(session_no=3, kind="allergic_reaction", severity=2, at=day(3, 15))
    clinic2.react(session_no=3, kind="necrosis", severity=2, at=day(3, 16))
    with rejected(Code.REACTION_UNREVIEWED):
        clinic2.give(at=day(4), actor="nurse-bo", aftercare="AC-1")
    found = {(f["code"], f["session_no"]) for f in app.compliance(as_of=AS_OF)["findings"]}
    assert {("INTERVAL_BELOW_PROTOCOL", 2), ("INTERVAL_BELOW_PROTOCOL", 3),
            ("SCREENING_INCONSISTENT", None), ("SEVERE_REACTION", 3),
            ("REACTION_UNREVIEWED", 3)} <= found
    assert len([f for f in app.compliance(as_of=AS_OF)["findings"]
                if f["code"] == "SEVERE_REACTION"]) == 2


def test_the_same_history_under_default_1_gives_the_v1_answers(clinic: Clinic) -> None:
    clinic.open()
    clinic.consult(actor="nurse-bo", medications=["aspirin 75mg daily"])
    clinic.run("adjust_interval", at=day(0, 10), actor="nurse-bo", course_id="C1",
               min_days=1, target_days=1, max_days=1, reason="fast track requested")
    for n in (1, 2, 3):
        clinic.give(at=day(n), actor="nurse-bo")
    clinic.react(session_no=3, kind="allergic_reaction", severity=2, at=day(3, 15))
    clinic.give(at=day(4), actor="nurse-bo", products=[product()])
    assert [c for c in codes(clinic) if c[0] != "OVERDUE"] == []


def test_a_course_keeps_its_catalogue_after_another_is_adopted(clinic2: Clinic) -> None:
    clinic2.ready()
    clinic2.app.adopt_catalogue("default@1", actor="dr-ada", reason="board suspends v2")
    clinic2.ready("C2", patient_ref="P2")
    clinic2.give(aftercare=None)
    clinic2.give("C2")
    assert clinic2.course("C1")["protocol"]["version"] == 2
    assert clinic2.course("C2")["protocol"]["version"] == 1
    assert [c[1] for c in codes(clinic2) if c[0] == "AFTERCARE_NOT_RECORDED"] == ["C1"]
    assert [e["subject"] for e in clinic2.app.audit() if e["event"] == "CatalogueAdopted"] \
        == ["catalogue", "catalogue"]


def test_dates_are_local(clinic2: Clinic) -> None:
    """The follow-up's dates come from the session's local date (Paris), not UTC."""
    clinic2.ready()
    clinic2.give(at=(T0 + DAY).replace(hour=0, minute=30).isoformat(), aftercare="AC-1")
    assert clinic2.course()["follow_up"]["due"] == (
        dt.date(2026, 9, 2) + dt.timedelta(days=14)).isoformat()
