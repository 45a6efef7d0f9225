"""The compliance report read from the application's stored events (in memory): time travel
over valid and record time, late-recorded facts, and the property that the live report
and a replay from the full store never disagree."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coursebook.adapters.entrypoints.cli import cli
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.course_state import CourseState
from coursebook.errors import Rejected
from coursebook.projections.compliance import build_report, report_topics
from coursebook.service.application import Coursebook
from tests.stores import PERSISTENT_KINDS, params, release, target

START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
SCREENING = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
             "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
             "diabetes": False, "heart_condition": False, "allergies": [], "medications": [],
             "notes": "Sister's wedding in June"}
PRODUCT = {"name": "NCTF 135 HA", "lot": "LOT-1", "expires_on": "2030-12-31"}


class Clinic:
    """A store (in memory, or at the target `store`) recording with a fixed clock, and
    short verbs for commands."""

    def __init__(self, *, timezone: str = "UTC", nurse_licence: str = "2030-12-31",
                 store: Path | str | None = None, catalogue: str = "default@1") -> None:
        self.clock = FixedClock(START)
        if store is None:
            self.app = Coursebook({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                                  clock=self.clock)
        else:
            self.app = open_store(str(store), create=True, clock=self.clock)
        self.app.initialise(timezone, catalogue)  # the rules of version 1 unless asked
        self._ids = itertools.count(1)
        self.send("register_practitioner", START - DAY, actor="admin", practitioner_id="dr",
                  name="Dr Ada Okafor", role="physician", license_number="L-1",
                  license_expires_on="2030-12-31")
        self.send("register_practitioner", START - DAY, actor="admin",
                  practitioner_id="nurse", name="Tove Lind", role="nurse",
                  license_number="L-2", license_expires_on=nurse_licence)

    def send(self, command: str, at: dt.datetime, /, *, actor: str = "dr",
             **fields: Any) -> bool:
        """Applies one command; False when it was refused (the history goes on)."""
        body = {"command": command, "command_id": f"c-{next(self._ids)}", "at": at.isoformat(),
                "actor": actor, **fields}
        try:
            self.app.execute(body)
        except Rejected:
            return False
        return True

    def open(self, course_id: str, at: dt.datetime, patient_ref: str = "P-1") -> None:
        assert self.send("open_course", at, actor="desk", course_id=course_id,
                         patient_ref=patient_ref, indication="skin_rejuvenation",
                         patient={"name": "Jeanne Martin", "birth_date": "1984-03-12"})
        assert self.send("record_consultation", at, course_id=course_id, consent=True,
                         screening=SCREENING)

    def give(self, course_id: str, at: dt.datetime, **fields: Any) -> bool:
        return self.send("give_session", at, actor="nurse", course_id=course_id,
                         products=[PRODUCT], areas=["face"], dose_ml=1.0, anaesthetic=None,
                         **fields)

    def given(self, course_id: str) -> int:
        """Sessions given so far (0 for a course not opened)."""
        try:
            given: int = self.app.get_course(course_id)["sessions_given"]
        except Rejected:
            return 0
        return given

    def awaiting_review(self, course_id: str) -> int:
        """The session of the first severe reaction awaiting review (1 when none)."""
        try:
            state = CourseState.fold(self.app.course_events(course_id))
        except Rejected:
            return 1
        pending = state.pending_reviews() if state is not None else []
        return pending[0].session_no if pending else 1

    def later(self, delta: dt.timedelta) -> dt.datetime:
        self.clock.advance(delta)
        return self.clock.now()

    def report(self, **moments: dt.datetime | None) -> dict[str, Any]:
        return self.app.compliance_report(**moments).document()

    def found(self, **moments: dt.datetime | None) -> list[tuple[str, str | None, int | None]]:
        return [(f["code"], f["course_id"], f["session_no"])
                for f in self.report(**moments)["findings"]]


@pytest.fixture
def clinic() -> Iterator[Clinic]:
    c = Clinic()
    yield c
    c.app.close()


class TestTimeTravel:
    def test_the_live_report_is_as_of_the_clocks_now(self, clinic: Clinic):
        clinic.open("C-1", START)
        assert clinic.report()["as_of"] == "2026-01-05T08:00:00Z"

    def test_courses_counts_the_courses_opened_by_the_as_of_moment(self, clinic: Clinic):
        clinic.open("C-1", START)
        clinic.later(3 * DAY)
        clinic.open("C-2", START + 2 * DAY)
        assert clinic.report(as_of=START + DAY)["courses"] == 1
        assert clinic.report()["courses"] == 2

    def test_a_late_recorded_reaction_joins_the_as_of_answer_once_recorded(
            self, clinic: Clinic):
        clinic.open("C-1", START)
        clinic.later(HOUR)
        assert clinic.give("C-1", START + HOUR)
        phoned_in = clinic.later(4 * DAY)
        # A severe reaction that happened on day 1, reported on day 4.
        assert clinic.send("report_reaction", START + DAY, actor="nurse", course_id="C-1",
                           session_no=1, kind="nodules", severity=3)
        before_report = phoned_in - HOUR
        assert clinic.found(as_of=START + 2 * DAY, known_at=before_report) == []
        assert clinic.found(as_of=START + 2 * DAY) == [("SEVERE_REACTION", "C-1", 1)]
        # By day 3 the 48 hours had run out: known now, though not then.
        assert clinic.found(as_of=START + 3 * DAY + HOUR) == [
            ("SEVERE_REACTION", "C-1", 1), ("REACTION_UNREVIEWED", "C-1", 1)]
        assert clinic.found(as_of=START + 3 * DAY + HOUR, known_at=before_report) == []

    def test_a_review_counts_only_if_it_falls_within_the_moment_asked_about(
            self, clinic: Clinic):
        clinic.open("C-1", START)
        clinic.later(HOUR)
        assert clinic.give("C-1", START + HOUR)
        clinic.later(HOUR)
        assert clinic.send("report_reaction", START + 2 * HOUR, actor="nurse",
                           course_id="C-1", session_no=1, kind="swelling", severity=4)
        clinic.later(3 * DAY - HOUR)
        assert clinic.send("review_reaction", START + DAY, course_id="C-1", session_no=1,
                           decision="continue")
        # The review, on day 1, was within 48 hours: no violation as of day 3 ...
        assert ("REACTION_UNREVIEWED", "C-1", 1) not in clinic.found()
        # ... but as known before it was recorded, the deadline had passed unreviewed.
        assert ("REACTION_UNREVIEWED", "C-1", 1) in clinic.found(
            as_of=START + 3 * DAY, known_at=START + 2 * DAY)

    def test_an_erasure_hides_an_overdue_course_only_from_the_moment_it_happened(
            self, clinic: Clinic):
        clinic.open("C-1", START)
        clinic.later(HOUR)
        assert clinic.give("C-1", START + HOUR)
        clinic.later(60 * DAY)  # session 2 was due by day 28
        assert clinic.send("erase_patient", START + 40 * DAY, actor="dpo", patient_ref="P-1",
                           reason="GDPR Art. 17 request")
        assert clinic.found(as_of=START + 35 * DAY) == [("OVERDUE", "C-1", 2)]
        assert clinic.found(as_of=START + 45 * DAY) == []

    def test_a_licence_renewal_removes_the_expiry_finding_from_its_moment_on(self):
        clinic = Clinic(nurse_licence="2026-01-20")
        assert clinic.found() == [("LICENSE_EXPIRING", None, None)]
        clinic.later(2 * DAY)
        assert clinic.send("renew_license", START + DAY, actor="admin", practitioner_id="nurse",
                           license_number="L-2b", license_expires_on="2027-01-20")
        assert clinic.found(as_of=START + DAY) == []
        assert clinic.found(as_of=START + DAY, known_at=START + HOUR) == [
            ("LICENSE_EXPIRING", None, None)]
        clinic.app.close()

    def test_the_report_carries_no_personal_data(self, clinic: Clinic):
        clinic.open("C-1", START)
        clinic.later(HOUR)
        assert clinic.give("C-1", START + HOUR)
        clinic.later(40 * DAY)
        text = str(clinic.report())
        for personal in ("Jeanne", "Martin", "1984", "wedding"):
            assert personal not in text

    def test_the_report_never_opens_personal_data(self, clinic: Clinic,
                                                  monkeypatch: pytest.MonkeyPatch):
        clinic.open("C-1", START)
        clinic.later(HOUR)
        assert clinic.give("C-1", START + HOUR)
        expected = clinic.report()

        def refuse(*args: Any) -> None:
            raise AssertionError("the report decrypted personal data")

        monkeypatch.setattr(clinic.app.keyring, "decrypt", refuse)
        assert clinic.report() == expected


# -- the property: live and replay never disagree -----------------------------------------
COURSES = ("C-0", "C-1", "C-2")
PATIENTS = {"C-0": "P-0", "C-1": "P-0", "C-2": "P-1"}

backdate = st.integers(min_value=0, max_value=20 * 24).map(lambda h: h * HOUR)
recent = st.one_of(st.just(dt.timedelta(0)), st.integers(1, 48).map(lambda h: h * HOUR))
course_ids = st.sampled_from(COURSES)
ARGUMENTS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "open": st.tuples(course_ids, backdate),
    "give": st.tuples(course_ids, st.one_of(recent, backdate), st.booleans()),
    "react": st.tuples(course_ids, st.one_of(recent, backdate), st.integers(0, 1),
                       st.integers(1, 5)),
    "review": st.tuples(course_ids, st.one_of(recent, backdate)),
    "consult": st.tuples(course_ids, backdate, st.booleans(), st.booleans(), st.booleans()),
    "override": st.tuples(course_ids),
    "pause": st.tuples(course_ids),
    "resume": st.tuples(course_ids),
    "complete": st.tuples(course_ids),
    "adjust": st.tuples(course_ids, st.integers(1, 20), st.integers(0, 20)),
    "renew": st.tuples(st.integers(-5, 60)),
    "erase": st.tuples(st.just("P-1")),
}
# Sessions, reactions and reviews are what the findings are about: draw them most often.
KINDS = ["give"] * 6 + ["react"] * 3 + ["review"] * 3 + ["consult"] * 2 + [
    "open", "override", "pause", "resume", "complete", "adjust", "renew", "erase"]
actions = st.sampled_from(KINDS).flatmap(
    lambda kind: ARGUMENTS[kind].map(lambda args: (kind, *args)))
steps = st.lists(st.tuples(st.integers(min_value=1, max_value=6 * 24 * 60), actions),
                 min_size=10, max_size=40)


def play(clinic: Clinic, action: tuple[Any, ...]) -> None:
    """One generated act, recorded at the clock's now with a `at` back-dated by `ago`."""
    now = clinic.clock.now()
    kind, *args = action
    if kind == "open":
        course_id, ago = args
        if clinic.send("open_course", now - ago, actor="desk", course_id=course_id,
                       patient_ref=PATIENTS[course_id], indication="skin_rejuvenation"):
            clinic.send("record_consultation", now - ago, course_id=course_id, consent=True,
                        screening=SCREENING)
    elif kind == "give":
        course_id, ago, short = args
        extra = {"spacing_override_reason": "Patient travels abroad"} if short else {}
        clinic.give(course_id, now - ago, **extra)
    elif kind == "react":  # to the last session given, or the one before
        course_id, ago, back, severity = args
        clinic.send("report_reaction", now - ago, actor="nurse", course_id=course_id,
                    session_no=clinic.given(course_id) - back, kind="nodules",
                    severity=severity)
    elif kind == "review":  # a session with a severe reaction awaiting review, if any
        course_id, ago = args
        clinic.send("review_reaction", now - ago, course_id=course_id,
                    session_no=clinic.awaiting_review(course_id), decision="continue")
    elif kind == "consult":
        course_id, ago, diabetes, pregnant, override = args
        consulted = clinic.send("record_consultation", now - ago, course_id=course_id,
                                consent=True, screening={**SCREENING, "diabetes": diabetes,
                                                         "pregnant": pregnant})
        if consulted and pregnant and override:
            play(clinic, ("override", course_id))
    elif kind == "override":
        clinic.send("override_contraindication", now, course_id=args[0], code="PREGNANCY",
                    justification="Confirmed not pregnant by a blood test today")
    elif kind in ("pause", "resume", "complete"):
        fields = {} if kind == "complete" else {"reason": "Patient asked for it"}
        clinic.send(f"{kind}_course", now, course_id=args[0], **fields)
    elif kind == "adjust":
        course_id, low, spread = args
        clinic.send("adjust_interval", now, actor="nurse", course_id=course_id, min_days=low,
                    target_days=low + spread // 2, max_days=low + spread,
                    reason="Slower healing than usual")
    elif kind == "renew":
        expires = (now + args[0] * DAY).date().isoformat()
        clinic.send("renew_license", now, actor="admin", practitioner_id="nurse",
                    license_number="L-2", license_expires_on=expires)
    elif kind == "erase":
        clinic.send("erase_patient", now, actor="dpo", patient_ref=args[0],
                    reason="GDPR Art. 17 request")


def write_history(clinic: Clinic,
                  history: list[tuple[int, tuple[Any, ...]]]) -> list[tuple[dt.datetime,
                                                                         dict[str, Any]]]:
    """Plays the history, capturing the live report (as of the clock's now) after each
    step; then lets the store go on after the last moment captured."""
    clinic.open("C-0", START, patient_ref="P-0")
    clinic.open("C-1", START, patient_ref="P-0")
    live: list[tuple[dt.datetime, dict[str, Any]]] = [(START, clinic.report())]
    for minutes, action in history:
        clinic.later(dt.timedelta(minutes=minutes))
        play(clinic, action)
        live.append((clinic.clock.now(), clinic.report()))
    clinic.later(30 * DAY)
    play(clinic, ("give", "C-0", 40 * DAY, True))  # a late, back-dated fact after them all
    for code in sorted({f["code"] for _, report in live for f in report["findings"]}):
        event(f"found {code}")  # --hypothesis-show-statistics: what histories reach
    return live


ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps, timezone=ZONES)
def test_the_live_report_at_any_moment_equals_the_replay_as_of_and_known_at_that_moment(
        history: list[tuple[int, tuple[Any, ...]]], timezone: str):
    clinic = Clinic(timezone=timezone, nurse_licence="2026-02-20")
    try:
        live = write_history(clinic, history)
        for moment, captured in live:
            assert clinic.report(as_of=moment, known_at=moment) == captured, moment
        assert_sealed_read_folds_as_the_full_read(clinic.app)
    finally:
        clinic.app.close()


def assert_sealed_read_folds_as_the_full_read(app: Coursebook) -> None:
    """The report reads personal data encrypted (`EncryptedPersonal`); the courses it folds
    equal those folded from the application's own fully decoded events."""
    report = app.compliance_report()
    notifications = app.recorder.select_notifications(1, 100_000, topics=report_topics())
    full = build_report([app.mapper.to_domain_event(n) for n in notifications],
                        as_of=report.as_of, known_at=None, zone=app.zone)
    assert report.courses == full.courses
    assert report.document() == full.document()


@pytest.mark.slow
@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_the_command_line_replay_from_a_stored_history_equals_the_live_report_of_each_moment(
        kind: str):
    @settings(max_examples={"sqlite": 8, "postgres": 3}[kind], deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(history=steps, timezone=ZONES)
    def replay(history: list[tuple[int, tuple[Any, ...]]], timezone: str) -> None:
        with tempfile.TemporaryDirectory(prefix="compliance-") as directory:
            store = target(kind, Path(directory))
            try:
                check_command_line_replay(store, history, timezone)
            finally:
                release(kind, Path(directory))

    replay()


def check_command_line_replay(store: str, history: list[tuple[int, tuple[Any, ...]]],
                              timezone: str) -> None:
    clinic = Clinic(timezone=timezone, nurse_licence="2026-02-20", store=store)
    try:
        live = write_history(clinic, history)
    finally:
        clinic.app.close()
    runner = CliRunner()
    for moment, captured in live:
        stamp = moment.isoformat()
        result = runner.invoke(cli, ["--db", str(store), "--format", "json", "compliance",
                                     "--as-of", stamp, "--known-at", stamp])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == json.loads(json.dumps(captured)), stamp
