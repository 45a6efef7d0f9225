"""The demo clinic's story: a seeded script of public commands, dated relative to "now".

`ClinicScript(now, zone, catalogue).steps` is a list of `Step`s — one command each, as the
JSON-like dict a clinic backend would send — with the rejection code the step is meant to
meet (None for a command that must be accepted). Everything is decided by the seed and
`now`: run it twice with the same `now` and the commands are identical.

Histories end before today (no fact lies in the future); the sessions booked next lie in
the coming weeks. Patients carry clearly fictional names and birth dates in the optional
`patient` object, and screening answers and notes are personal data too: nothing here
prints them, and `ClinicScript.personal_values` lists them so tests can check that no
output does.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from coursebook.domain.protocols import INDICATIONS, Catalogue
from coursebook.domain.rules import SCREENING_FLAGS, spacing_rule_for
from coursebook.domain.values import Protocol, SpacingRule

__all__ = ["DEMO_SEED", "DEMO_ZONE", "FEATURED_COURSE", "ClinicScript", "Step"]

DEMO_SEED = 20260301
DEMO_ZONE = "Europe/Paris"
FEATURED_COURSE = "demo-skin-01"
"""The course whose state and history the demo shows: refused, overridden, reacted to."""

HISTORY_DAYS = 240
"""How far back the oldest generic course opens."""

FRONT_DESK = "frontdesk"
ADMIN = "clinic-admin"

PRODUCTS: dict[str, tuple[str, ...]] = {
    "skin_rejuvenation": ("Non-cross-linked hyaluronic acid 20 mg/ml",
                          "Polynucleotide skin booster 7.5 mg/ml"),
    "hair_restoration": ("Hair revitalising peptide complex", "Dutasteride 0.01% solution"),
    "fat_reduction": ("Deoxycholic acid 10 mg/ml",),
    "cellulite": ("Phosphatidylcholine 5% lipolytic solution", "Collagenase-free organic silicon"),
    "pigmentation": ("Tranexamic acid 4 mg/ml", "Glutathione 600 mg"),
}
AREAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "skin_rejuvenation": (("face",), ("face", "neck"), ("neck", "decollete")),
    "hair_restoration": (("scalp",), ("scalp", "crown")),
    "fat_reduction": (("submental",), ("abdomen",), ("flanks",)),
    "cellulite": (("thighs",), ("thighs", "buttocks")),
    "pigmentation": (("cheeks",), ("cheeks", "forehead"), ("upper lip",)),
}
DOSE_ML: dict[str, tuple[float, float]] = {
    "skin_rejuvenation": (1.0, 3.0), "hair_restoration": (2.0, 5.0),
    "fat_reduction": (2.0, 4.0), "cellulite": (5.0, 10.0), "pigmentation": (0.5, 2.0),
}
ABBREVIATION = {"skin_rejuvenation": "skin", "hair_restoration": "hair",
                "fat_reduction": "fat", "cellulite": "cell", "pigmentation": "pigm"}
LIDOCAINE = "Lidocaine HCl 2%"

# Clearly fictional people: personal data that must never reach an output.
FIRST_NAMES = ("Aurelie", "Bastienne", "Calloway", "Delphine", "Evander", "Florentyna",
               "Gideon", "Honorine", "Isolde", "Jaspreet", "Kasimir", "Leontyne", "Marisol",
               "Nikolai", "Ottilie", "Peregrine")
LAST_NAMES = ("Quillfeather", "Brightwater", "Thistlewood", "Marchbank", "Fennimore",
              "Larkspur", "Copperfield", "Wintergreen", "Ravensworth", "Pembrooke")
SCREENING_NOTES = ("Demo note: previous filler treatment, no complications",
                   "Demo note: prefers late-afternoon appointments",
                   "Demo note: mild needle anxiety, topical anaesthetic helps",
                   "Demo note: haematology letter scanned into the paper file")
AFTERCARE = {"skin_rejuvenation": "AC-FACE v3", "hair_restoration": "AC-SCALP v2",
             "fat_reduction": "AC-BODY v2", "cellulite": "AC-BODY v2",
             "pigmentation": "AC-FACE v3"}
"""The written aftercare instructions handed out after a session, by indication."""

FLAG_MEDICATIONS = {"anticoagulants": "apixaban 5 mg", "diabetes": "metformin 500 mg",
                    "heart_condition": "bisoprolol 2.5 mg",
                    "autoimmune_disease": "hydroxychloroquine 200 mg"}


@attrs.frozen
class Step:
    """One command of the story, and what the engine is meant to answer."""

    at: dt.datetime
    body: dict[str, Any]
    expect: str | None = None
    """The rejection code this step demonstrates; None when it must be accepted."""
    recorded_after: dt.timedelta = dt.timedelta(minutes=2)
    """How long after `at` the clinic's backend sent it (the recorded time)."""

    @property
    def command(self) -> str:
        return str(self.body["command"])

    @property
    def subject(self) -> str | None:
        value = self.body.get("course_id", self.body.get("practitioner_id"))
        return None if value is None else str(value)


@attrs.frozen
class Staff:
    practitioner_id: str
    role: str
    license_expires_on: dt.date

    def licensed_on(self, day: dt.date) -> bool:
        return day <= self.license_expires_on


class CourseScript:
    """Writes one course's commands, mirroring just enough state to keep them valid."""

    def __init__(self, script: ClinicScript, course_id: str, patient_ref: str,
                 indication: str, planned: int | None = None) -> None:
        self.script = script
        self.course_id = course_id
        self.patient_ref = patient_ref
        self.indication = indication
        protocol = script.catalogue.get(indication)
        if protocol is None:
            raise ValueError(f"the catalogue has no protocol for {indication}")
        self.protocol: Protocol = protocol
        self.planned = planned or protocol.default_sessions
        self.given: list[dt.datetime] = []
        self.adjusted: SpacingRule | None = None
        self.adjusted_in_maintenance = False
        self.maintenance = False
        self.closed = False
        self.scheduled: tuple[int, dt.datetime] | None = None
        self.anaesthetic: str | None = script.rng.choice((LIDOCAINE, None, None))
        self.areas = list(script.rng.choice(AREAS[indication]))
        self.last_at: dt.datetime | None = None
        self.consulted_at: dt.datetime | None = None
        self.follow_up_forgotten = False

    # -- time --------------------------------------------------------------------------
    def _at(self, at: dt.datetime) -> dt.datetime:
        """Keeps a course's commands strictly in order (a few minutes apart at least)."""
        if self.last_at is not None and at <= self.last_at:
            at = self.last_at + dt.timedelta(minutes=5)
        self.last_at = at
        return at

    def rule(self, session_no: int) -> SpacingRule:
        return spacing_rule_for(self.protocol, session_no, in_maintenance=self.maintenance,
                                adjusted=self.adjusted,
                                adjusted_in_maintenance=self.adjusted_in_maintenance)

    @property
    def next_no(self) -> int:
        return len(self.given) + 1

    @property
    def last_day(self) -> dt.date | None:
        return self.script.day_of(self.given[-1]) if self.given else None

    def _send(self, name: str, at: dt.datetime, actor: str, expect: str | None = None,
              **fields: Any) -> Step:
        body = {"command": name, "course_id": self.course_id, **fields}
        return self.script.send(body, self._at(at), actor, expect)

    # -- commands ----------------------------------------------------------------------
    def open(self, at: dt.datetime, *, with_patient: bool = False) -> None:
        fields: dict[str, Any] = {"patient_ref": self.patient_ref,
                                  "indication": self.indication}
        if self.planned != self.protocol.default_sessions:
            fields["planned_sessions"] = self.planned
        if with_patient:
            fields["patient"] = self.script.patient_for(self.patient_ref)
        self._send("open_course", at, FRONT_DESK, **fields)

    def consult(self, at: dt.datetime, actor: str, *, consent: bool = True,
                flags: Iterable[str] = (), allergies: Iterable[str] = (),
                notes: bool = False) -> None:
        on = set(flags)
        screening: dict[str, Any] = {flag: flag in on for flag in SCREENING_FLAGS}
        screening["allergies"] = list(allergies)
        screening["medications"] = [FLAG_MEDICATIONS[f] for f in SCREENING_FLAGS
                                    if f in on and f in FLAG_MEDICATIONS]
        if notes:
            screening["notes"] = self.script.rng.choice(SCREENING_NOTES)
        # Allergies are personal too, but their words are also product names (an allergy
        # to lidocaine, an anaesthetic named Lidocaine HCl 2%), so they are not listed.
        self.script.remember(screening["medications"], [screening.get("notes")])
        step = self._send("record_consultation", at, actor, consent=consent,
                          screening=screening)
        self.consulted_at = step.at

    def override(self, at: dt.datetime, actor: str, code: str, justification: str) -> None:
        self._send("override_contraindication", at, actor, code=code,
                   justification=justification)

    def schedule(self, at: dt.datetime, planned_at: dt.datetime, actor: str, *,
                 practitioner_id: str | None = None, override_reason: str | None = None,
                 expect: str | None = None) -> None:
        fields: dict[str, Any] = {"planned_at": planned_at.isoformat(),
                                  "session_no": self.next_no}
        if practitioner_id is not None:
            fields["practitioner_id"] = practitioner_id
        if override_reason is not None:
            fields["spacing_override_reason"] = override_reason
        self._send("schedule_session", at, actor, expect, **fields)
        if expect is None:
            self.scheduled = (self.next_no, planned_at)

    def reschedule(self, at: dt.datetime, planned_at: dt.datetime, actor: str,
                   reason: str, *, override_reason: str | None = None) -> None:
        fields: dict[str, Any] = {"session_no": self.next_no,
                                  "planned_at": planned_at.isoformat(), "reason": reason}
        if override_reason is not None:
            fields["spacing_override_reason"] = override_reason
        self._send("reschedule_session", at, actor, **fields)
        self.scheduled = (self.next_no, planned_at)

    def cancel(self, at: dt.datetime, actor: str, reason: str) -> None:
        self._send("cancel_session", at, actor, session_no=self.next_no, reason=reason)
        self.scheduled = None

    def screening_stale_on(self, day: dt.date) -> bool:
        """Whether the catalogue's `screening_valid_days` has run out by `day`."""
        days = self.script.catalogue.safety.screening_valid_days
        if days is None or self.consulted_at is None:
            return False
        return day > self.script.day_of(self.consulted_at) + dt.timedelta(days=days)

    def follow_up(self, at: dt.datetime, actor: str, outcome: str = "as_expected",
                  session_no: int = 1) -> None:
        self._send("record_follow_up", at, actor, session_no=session_no, outcome=outcome)

    def give(self, at: dt.datetime, actor: str, *, expect: str | None = None,
             override_reason: str | None = None, anaesthetic: Any = "default",
             expired_lot: bool = False, aftercare: bool = True) -> None:
        rng = self.script.rng
        if expect is None and self.screening_stale_on(self.script.day_of(at)):
            # The health profile is out of date: screened again before treating.
            self.consult(at - dt.timedelta(minutes=40), actor)
        name = rng.choice(PRODUCTS[self.indication])
        expires_on = (self.script.day_of(at) - dt.timedelta(days=9) if expired_lot
                      else self.script.day_of(at) + dt.timedelta(days=rng.randint(120, 540)))
        lot = f"{name.split()[0][:3].upper()}-{expires_on:%y%m}-{rng.randint(100, 999)}"
        low, high = DOSE_ML[self.indication]
        fields: dict[str, Any] = {
            "session_no": self.next_no,
            "products": [{"name": name, "lot": lot, "expires_on": expires_on.isoformat()}],
            "areas": list(self.areas),
            "dose_ml": round(rng.uniform(low, high), 1),
            "anaesthetic": self.anaesthetic if anaesthetic == "default" else anaesthetic,
        }
        if override_reason is not None:
            fields["spacing_override_reason"] = override_reason
        if aftercare:
            fields["aftercare"] = AFTERCARE[self.indication]
        self._send("give_session", at, actor, expect, **fields)
        if expect is None:
            self.given.append(at)
            self.scheduled = None
            if len(self.given) == 1:
                self._follow_up_first()

    def _follow_up_first(self) -> None:
        """The follow-up the catalogue asks for after the first session: mostly on its
        due day or a little after, recorded when that day has come."""
        rule = self.script.catalogue.safety.follow_up
        if rule is None or rule.after_session != 1:
            return
        script, rng = self.script, self.script.rng
        first = script.day_of(self.given[0])
        day = first + dt.timedelta(days=rule.due_days + rng.choice((0, 0, 1, 2, 3)))
        if day >= script.today or self.follow_up_forgotten:  # not yet, or forgotten
            return
        script.send({"command": "record_follow_up", "course_id": self.course_id,
                     "session_no": 1, "outcome": rng.choice(("as_expected",) * 5
                                                            + ("concern",))},
                    script.moment(day), script.injector(day), None)

    def react(self, at: dt.datetime, actor: str, kind: str, severity: int,
              session_no: int | None = None) -> None:
        self._send("report_reaction", at, actor, session_no=session_no or len(self.given),
                   kind=kind, severity=severity)

    def review(self, at: dt.datetime, actor: str, decision: str,
               session_no: int | None = None) -> None:
        notes = "Demo note: reviewed in clinic, photographs taken"
        self.script.remember([notes])
        self._send("review_reaction", at, actor, session_no=session_no or len(self.given),
                   decision=decision, notes=notes)
        if decision == "discontinue":
            self.closed = True

    def adjust(self, at: dt.datetime, actor: str, rule: tuple[int, int, int],
               reason: str, expect: str | None = None) -> None:
        self._send("adjust_interval", at, actor, expect, min_days=rule[0],
                   target_days=rule[1], max_days=rule[2], reason=reason)
        if expect is not None:
            return
        self.adjusted = SpacingRule(*rule)
        self.adjusted_in_maintenance = self.maintenance

    def extend(self, at: dt.datetime, actor: str, planned: int, reason: str) -> None:
        self._send("extend_plan", at, actor, planned_sessions=planned, reason=reason)
        self.planned = planned

    def pause(self, at: dt.datetime, actor: str, reason: str) -> None:
        self._send("pause_course", at, actor, reason=reason)

    def complete(self, at: dt.datetime, actor: str) -> None:
        self._send("complete_course", at, actor)
        if self.protocol.maintenance is not None:
            self.maintenance = True
        else:
            self.closed = True

    def discontinue(self, at: dt.datetime, actor: str, reason: str) -> None:
        self._send("discontinue_course", at, actor, reason=reason)
        self.closed = True
        self.scheduled = None

    # -- the ordinary rhythm of a course -----------------------------------------------
    def run_sessions(self, first_day: dt.date, *, until: dt.date | None = None,
                     lapse_after: int | None = None, complete: bool = True,
                     maintenance_sessions: int = 1) -> None:
        """Sessions on protocol spacing with jitter, each booked at the previous visit,
        until the plan is done (then completion, and maintenance if the protocol has it)
        or the next booking falls in the coming weeks (left scheduled).

        `lapse_after`: stop after that many sessions without booking the next one (the
        patient did not rebook: an overdue course). `until`: the last day sessions may
        be given (default yesterday)."""
        script, rng = self.script, self.script.rng
        last_day = until or script.today - dt.timedelta(days=1)
        day = first_day
        while not self.closed:
            if not self.maintenance and self.next_no > self.planned:
                if not complete:
                    return
                done = script.moment(day=self.last_day or day, after=self.given[-1])
                self.complete(done + dt.timedelta(minutes=30), script.anyone(script.day_of(done)))
                if not self.maintenance or maintenance_sessions == 0:
                    return
                day = self._next_day(rng)
                continue
            if self.maintenance and maintenance_sessions <= 0:
                return
            previous = self.given[-1] if self.given else self.consulted_at
            booked_at = (None if previous is None
                         else previous + dt.timedelta(minutes=rng.randint(20, 45)))
            if day > last_day:
                planned_day = max(day, script.today + dt.timedelta(days=1))
                if until is None and booked_at is not None and \
                        planned_day <= script.today + dt.timedelta(days=45):
                    self._book(booked_at, script.moment(planned_day))
                    if rng.random() < 0.2:
                        self._move_booking(planned_day)
                return
            when = script.moment(day, after=booked_at)
            if booked_at is not None and rng.random() < 0.8:
                self._book(booked_at, when)
            injector = script.injector(day)
            self.give(when, injector)
            if rng.random() < 0.08:  # a mild reaction noted before the patient leaves
                self.react(when + dt.timedelta(minutes=10), injector,
                           rng.choice(("redness", "swelling", "tenderness", "bruising")),
                           rng.choice((1, 1, 2)))
            if self.maintenance:
                maintenance_sessions -= 1
            if lapse_after is not None and len(self.given) >= lapse_after:
                return
            day = self._next_day(rng)

    def _book(self, booked_at: dt.datetime, when: dt.datetime) -> None:
        script = self.script
        self.schedule(booked_at, when, script.anyone(script.day_of(booked_at)),
                      practitioner_id=script.injector(script.day_of(when)))

    def _move_booking(self, planned_day: dt.date) -> None:
        """The patient calls in the last days to move the booked visit a little later."""
        script, rng = self.script, self.script.rng
        called = script.moment(script.today - dt.timedelta(days=rng.randint(1, 4)))
        later = script.moment(planned_day + dt.timedelta(days=rng.randint(1, 4)))
        self.reschedule(called, later, script.anyone(script.day_of(called)),
                        rng.choice(("Patient asked to move the appointment",
                                    "Practitioner unavailable that day",
                                    "Patient unwell; moved a few days later")))

    def _next_day(self, rng: random.Random) -> dt.date:
        rule = self.rule(self.next_no)
        roll = rng.random()
        if roll < 0.05:
            gap = rule.max_days + rng.randint(2, 6)  # the patient came back late
        else:
            gap = max(rule.min_days, min(rule.max_days, rule.target_days + rng.randint(-2, 4)))
        base = self.last_day
        if base is None:
            raise ValueError("no session given yet")
        return base + dt.timedelta(days=gap)


class ClinicScript:
    """The whole clinic: staff, ordinary courses and the special cases, as `steps`."""

    def __init__(self, now: dt.datetime, zone: ZoneInfo, catalogue: Catalogue, *,
                 seed: int = DEMO_SEED) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now
        self.zone = zone
        self.catalogue = catalogue
        self.rng = random.Random(seed)
        self.today = now.astimezone(zone).date()
        self.start = self.today - dt.timedelta(days=HISTORY_DAYS + 30)
        self.steps: list[Step] = []
        self.staff: list[Staff] = []
        self.courses: list[str] = []
        self.personal_values: set[str] = set()
        self._patients: dict[str, dict[str, str]] = {}
        self._sequence = 0
        self._build()

    # -- helpers -----------------------------------------------------------------------
    def day_of(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.zone).date()

    def moment(self, day: dt.date, after: dt.datetime | None = None) -> dt.datetime:
        """A clinic-hours moment (09:00-17:45 local) on `day`, after `after` if given."""
        minutes = 9 * 60 + 15 * self.rng.randint(0, 35)
        at = dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                         tzinfo=self.zone)
        if after is not None and at <= after:
            at = after + dt.timedelta(minutes=15)
        return at

    def days_ago(self, days: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        day = self.today - dt.timedelta(days=days)
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)

    def send(self, body: dict[str, Any], at: dt.datetime, actor: str,
             expect: str | None = None) -> Step:
        self._sequence += 1
        command = {"command": body["command"], "command_id": f"demo-{self._sequence:04d}",
                   "at": at.isoformat(), "actor": actor,
                   **{k: v for k, v in body.items() if k != "command"}}
        step = Step(at=at, body=command, expect=expect,
                    recorded_after=dt.timedelta(minutes=self.rng.randint(1, 20)))
        self.steps.append(step)
        return step

    def remember(self, *values: Iterable[str | None]) -> None:
        for group in values:
            self.personal_values.update(v for v in group if v)

    def patient_for(self, patient_ref: str) -> dict[str, str]:
        if patient_ref not in self._patients:
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            born = dt.date(self.rng.randint(1958, 2001), self.rng.randint(1, 12),
                           self.rng.randint(1, 28))
            self._patients[patient_ref] = {"name": name, "birth_date": born.isoformat()}
            self.remember([name, born.isoformat()])
        return self._patients[patient_ref]

    def injector(self, day: dt.date) -> str:
        """A physician or nurse licensed on `day` (nurses more often)."""
        pool = [s for s in self.staff if s.role in ("physician", "nurse")
                and s.licensed_on(day)]
        weights = [1 if s.role == "physician" else 3 for s in pool]
        return self.rng.choices(pool, weights)[0].practitioner_id

    def physician(self, day: dt.date) -> str:
        pool = [s for s in self.staff if s.role == "physician" and s.licensed_on(day)]
        return self.rng.choice(pool).practitioner_id

    def anyone(self, day: dt.date) -> str:
        pool = [s for s in self.staff if s.licensed_on(day)]
        return self.rng.choice(pool).practitioner_id

    def course(self, indication: str, number: int, patient_ref: str | None = None,
               planned: int | None = None) -> CourseScript:
        course_id = f"demo-{ABBREVIATION[indication]}-{number:02d}"
        self.courses.append(course_id)
        ref = patient_ref or f"demo-pt-{len(self.courses):03d}"
        return CourseScript(self, course_id, ref, indication, planned)

    # -- the story ---------------------------------------------------------------------
    def _register(self, practitioner_id: str, name: str, role: str,
                  expires_on: dt.date) -> None:
        self.staff.append(Staff(practitioner_id, role, expires_on))
        registered = dt.datetime(self.start.year, self.start.month, self.start.day, 8, 30,
                                 tzinfo=self.zone) + dt.timedelta(minutes=len(self.staff))
        self.send({"command": "register_practitioner", "practitioner_id": practitioner_id,
                   "name": name, "role": role,
                   "license_number": f"DEMO-{role[:3].upper()}-{1000 + len(self.staff)}",
                   "license_expires_on": expires_on.isoformat()}, registered, ADMIN)

    def _build(self) -> None:
        today, days = self.today, dt.timedelta(days=1)
        self._register("dr-morel", "Dr Ada Morel (demo)", "physician", today + 700 * days)
        self._register("dr-okafor", "Dr Chidi Okafor (demo)", "physician",
                       self.start + 60 * days)
        self._register("nurse-lindqvist", "Nurse Britt Lindqvist (demo)", "nurse",
                       today + 420 * days)
        self._register("nurse-haddad", "Nurse Samir Haddad (demo)", "nurse",
                       today + 18 * days)  # LICENSE_EXPIRING within 30 days
        self._register("nurse-brennan", "Nurse Orla Brennan (demo)", "nurse",
                       today - 25 * days)  # expired: later acts are NOT_AUTHORIZED
        self._register("aest-rossi", "Giulia Rossi (demo aesthetician)", "aesthetician",
                       today + 900 * days)
        # Dr Okafor's licence is renewed before it runs out.
        renewed = self.start + 50 * days
        self.staff[1] = Staff("dr-okafor", "physician", today + 3 * 365 * days)
        self.send({"command": "renew_license", "practitioner_id": "dr-okafor",
                   "license_number": "DEMO-PHY-2002",
                   "license_expires_on": (today + 3 * 365 * days).isoformat()},
                  dt.datetime(renewed.year, renewed.month, renewed.day, 8, 45,
                              tzinfo=self.zone), ADMIN)
        self._featured()
        self._special_cases()
        self._ordinary_courses()

    def _featured(self) -> None:
        """Refused for a contraindication, overridden with a justification, a severe
        reaction reviewed within the day, a rescheduled visit, the next one booked."""
        c = self.course("skin_rejuvenation", 1)
        c.open(self.days_ago(63, 9, 10), with_patient=True)
        c.consult(self.days_ago(63, 9, 40), "dr-morel", flags=["bleeding_disorder"],
                  notes=True)
        c.give(self.days_ago(62, 11), "nurse-lindqvist", expect="CONTRAINDICATED")
        c.override(self.days_ago(61, 8, 50), "dr-morel", "BLEEDING_DISORDER",
                   "Haematology clearance on file: mild disorder, low-volume superficial "
                   "technique with extended compression")
        c.schedule(self.days_ago(61, 9), self.days_ago(58, 14, 30), "aest-rossi",
                   practitioner_id="nurse-lindqvist")
        c.give(self.days_ago(58, 14, 35), "nurse-lindqvist", anaesthetic=None)
        c.react(self.days_ago(56, 10, 15), "aest-rossi", "bruising", 3)
        c.review(self.days_ago(56, 16, 40), "dr-morel", "continue")
        c.schedule(self.days_ago(56, 16, 50), self.days_ago(37, 15), "aest-rossi",
                   practitioner_id="nurse-lindqvist")
        c.reschedule(self.days_ago(40, 12), self.days_ago(35, 11, 30), "aest-rossi",
                     reason="Patient asked to move the appointment")
        c.give(self.days_ago(35, 11, 35), "nurse-lindqvist", anaesthetic=None)
        c.schedule(self.days_ago(35, 12), self.days_ago(14, 10), "nurse-lindqvist")
        c.give(self.days_ago(14, 10, 5), "dr-morel", anaesthetic=None)
        c.schedule(self.days_ago(14, 10, 40), self.days_ago(-3, 10, 30), "aest-rossi",
                   practitioner_id="dr-morel")

    def _special_cases(self) -> None:
        d = self.days_ago
        # A maintenance course: completed months ago, one maintenance session since.
        c = self.course("skin_rejuvenation", 2)
        c.open(d(230, 9), with_patient=True)
        c.consult(d(230, 9, 30), "nurse-lindqvist", flags=["diabetes"])
        c.run_sessions(self.today - dt.timedelta(days=229), maintenance_sessions=1)

        # Lidocaine allergy: the anaesthetic is refused, the session given without it.
        c = self.course("skin_rejuvenation", 3)
        c.open(d(40, 9, 20))
        c.consult(d(40, 9, 45), "dr-okafor", allergies=["lidocaine"], notes=True)
        c.give(d(40, 10, 30), "nurse-haddad", anaesthetic=LIDOCAINE, expect="ALLERGEN")
        c.anaesthetic = None
        c.give(d(40, 10, 35), "nurse-haddad")
        c.run_sessions(self._next(c))

        # A severe reaction nobody reviewed (past 48 hours): the next session is refused.
        c = self.course("hair_restoration", 2)
        c.open(d(66, 9), with_patient=True)
        c.consult(d(66, 9, 20), "nurse-lindqvist", flags=["heart_condition"])
        for ago in (65, 58, 51, 44, 23, 9):
            c.give(d(ago, 15), "nurse-haddad" if ago < 40 else "nurse-lindqvist")
        c.react(d(5, 11), "aest-rossi", "nodules", 3)
        c.give(d(1, 15), "nurse-haddad", expect="REACTION_UNREVIEWED")
        c.schedule(d(1, 15, 20), d(-6, 15), "aest-rossi", practitioner_id="nurse-haddad")

        # Severe allergic reaction reviewed by a physician: course discontinued.
        c = self.course("pigmentation", 2)
        c.open(d(60, 11))
        c.consult(d(60, 11, 20), "dr-morel")
        c.give(d(59, 10), "nurse-lindqvist")
        c.give(d(38, 10), "nurse-lindqvist")
        c.react(d(37, 9), "nurse-lindqvist", "allergic_reaction", 3)
        c.review(d(37, 13), "dr-morel", "discontinue")

        # The patient stops: discontinued at their request.
        c = self.course("cellulite", 3)
        c.open(d(120, 14))
        c.consult(d(120, 14, 20), "nurse-haddad")
        c.run_sessions(self.today - dt.timedelta(days=119), until=self.today -
                       dt.timedelta(days=95))
        c.discontinue(d(90, 12), "aest-rossi", "Patient chose to stop the course")

        # Pregnancy at re-screening: the session is refused and the course paused.
        c = self.course("pigmentation", 3)
        c.open(d(63, 9))
        c.consult(d(63, 9, 30), "dr-okafor")
        c.give(d(62, 16), "nurse-lindqvist")
        c.give(d(41, 16), "nurse-lindqvist")
        c.consult(d(20, 15, 40), "dr-okafor", flags=["pregnant"])
        c.give(d(20, 16), "nurse-lindqvist", expect="CONTRAINDICATED")
        c.pause(d(20, 16, 10), "dr-okafor", "Treatment deferred until after pregnancy")

        # No consent at consultation: the booking is refused.
        c = self.course("fat_reduction", 4)
        c.open(d(15, 10))
        c.consult(d(15, 10, 30), "dr-okafor", consent=False)
        c.schedule(d(15, 10, 45), d(-4, 11), "aest-rossi", expect="NO_CONSENT")

        # Booked before the consultation: refused; the consultation is still to come.
        c = self.course("hair_restoration", 5)
        c.open(d(3, 12))
        c.schedule(d(3, 12, 5), d(-2, 12), "aest-rossi", expect="NO_CONSULTATION")
        c = self.course("cellulite", 6)
        c.open(d(2, 17))

        # An aesthetician may not inject; an expired licence may not either.
        c = self.course("fat_reduction", 5)
        c.open(d(50, 9))
        c.consult(d(50, 9, 15), "nurse-lindqvist", flags=["anticoagulants"])
        c.give(d(50, 9, 45), "aest-rossi", expect="NOT_AUTHORIZED")
        c.give(d(50, 9, 50), "nurse-lindqvist")
        c.give(d(36, 14), "nurse-lindqvist")
        c.give(d(21, 14), "nurse-brennan", expect="NOT_AUTHORIZED")
        c.give(d(21, 14, 10), "nurse-haddad")
        c.give(d(7, 14), "dr-okafor")
        c.schedule(d(7, 14, 30), d(-8, 14), "aest-rossi", practitioner_id="nurse-haddad")
        c.reschedule(d(2, 9, 15), d(-5, 9, 30), "aest-rossi",
                     reason="An earlier slot became free",
                     override_reason="Physician agreed to a 12-day gap for this visit")

        # Too soon: refused, then given with a stated spacing override; the next visit is
        # also booked sooner than the rule, with its reason.
        c = self.course("cellulite", 2)
        c.open(d(100, 10))
        c.consult(d(100, 10, 20), "nurse-lindqvist", flags=["autoimmune_disease"])
        c.run_sessions(self.today - dt.timedelta(days=99), until=self.today -
                       dt.timedelta(days=40), complete=False)
        last, rule = c.given[-1], c.rule(c.next_no)
        soon = self.moment(self.day_of(last) + dt.timedelta(days=max(1, rule.min_days - 5)))
        c.give(soon, "nurse-lindqvist", expect="TOO_SOON")
        c.give(soon + dt.timedelta(minutes=5), "nurse-lindqvist",
               override_reason="Clinic closes for two weeks; brought forward with "
                               "physician agreement")
        c.adjust(soon + dt.timedelta(minutes=30), "dr-morel", (21, 28, 35),
                 "Slower response: longer interval to let the tissue remodel")
        c.run_sessions(self._next(c))

        # Beyond the plan: refused until a physician extends it; then a lot has expired.
        c = self.course("hair_restoration", 1)
        c.open(d(190, 9))
        c.consult(d(190, 9, 30), "dr-morel")
        c.run_sessions(self.today - dt.timedelta(days=189), until=self.today -
                       dt.timedelta(days=30), complete=False)
        extra = self.moment(self._next(c))
        c.give(extra, "nurse-lindqvist", expect="PLAN_EXCEEDED")
        c.extend(extra + dt.timedelta(minutes=5), "dr-morel", c.planned + 2,
                 "Good response: two extra sessions to consolidate")
        c.give(extra + dt.timedelta(minutes=10), "nurse-lindqvist", expired_lot=True,
               expect="LOT_EXPIRED")
        c.give(extra + dt.timedelta(minutes=15), "nurse-lindqvist")
        c.run_sessions(self._next(c))

        # A hair course whose next visit is booked sooner than the rule, with a reason.
        c = self.course("hair_restoration", 3)
        c.open(d(30, 10))
        c.consult(d(30, 10, 15), "nurse-haddad")
        for ago in (29, 22, 15, 8):
            c.give(d(ago, 17), "nurse-haddad")
        c.schedule(d(8, 17, 30), d(-2, 17), "aest-rossi", practitioner_id="nurse-haddad",
                   override_reason="Only slot before the clinic's annual closure")
        c.schedule(d(8, 17, 35), d(-6, 17), "aest-rossi", expect="INVALID")

        # A session cancelled by the clinic, then rebooked.
        c = self.course("fat_reduction", 3)
        c.open(d(33, 9))
        c.consult(d(33, 9, 10), "dr-okafor")
        c.give(d(32, 10), "nurse-lindqvist")
        c.schedule(d(32, 10, 30), d(18, 10), "aest-rossi")
        c.cancel(d(19, 17), "aest-rossi", "Practitioner unavailable")
        c.schedule(d(19, 17, 5), d(16, 10), "aest-rossi", practitioner_id="dr-okafor")
        c.give(d(16, 10, 5), "dr-okafor")
        c.schedule(d(16, 10, 30), d(-2, 10), "aest-rossi", practitioner_id="dr-okafor")

        # Sent twice by a retrying backend: the second is a duplicate, not a new course.
        first = self.steps[-1]
        self.steps.append(attrs.evolve(first, recorded_after=first.recorded_after
                                       + dt.timedelta(seconds=30)))

        # A session entered with tomorrow's date: facts cannot lie in the future.
        c = self.course("pigmentation", 1)
        c.open(d(12, 9))
        c.consult(d(12, 9, 20), "dr-morel", flags=["heart_condition"])
        c.give(d(12, 10), "nurse-haddad")
        c.give(self.now + dt.timedelta(days=1), "nurse-haddad", expect="FUTURE_FACT")

        # Only a physician may shorten the spacing below the protocol (default@2): the
        # nurse's adjustment is refused, the physician's recorded; the session under it
        # is a finding. The follow-up after session 1 was forgotten: a missed follow-up.
        c = self.course("skin_rejuvenation", 9)
        c.follow_up_forgotten = True
        c.open(d(45, 9))
        c.consult(d(45, 9, 20), "nurse-haddad")
        c.give(d(44, 10), "nurse-haddad")
        c.adjust(d(44, 10, 30), "nurse-haddad", (10, 12, 21),
                 "Patient travels abroad for a month", expect="NOT_AUTHORIZED")
        c.adjust(d(44, 10, 40), "dr-morel", (10, 12, 21),
                 "Patient travels abroad for a month; skin tolerates it well")
        c.give(d(33, 10), "nurse-haddad")
        c.run_sessions(self._next(c))

        # The health profile is out of date (default@2: 180 days): the session is refused,
        # the patient screened again, and the session given.
        c = self.course("pigmentation", 9)
        c.open(d(230, 11))
        c.consult(d(230, 11, 20), "dr-okafor")
        c.give(d(229, 10), "nurse-lindqvist")
        c.give(d(26, 10), "nurse-lindqvist", expect="SCREENING_STALE")
        c.consult(d(26, 10, 10), "dr-okafor")
        c.give(d(26, 10, 30), "nurse-lindqvist")
        c.run_sessions(self._next(c))

    def _next(self, c: CourseScript) -> dt.date:
        rule = c.rule(c.next_no)
        base = c.last_day
        if base is None:
            raise ValueError("no session given yet")
        return base + dt.timedelta(days=rule.target_days + self.rng.randint(0, 2))

    def _ordinary_courses(self) -> None:
        """About forty courses across the five indications, opened over the months."""
        numbers = dict.fromkeys(INDICATIONS, 10)
        returning: list[str] = []
        for i in range(40):
            indication = INDICATIONS[i % len(INDICATIONS)]
            numbers[indication] += 1
            ref = None
            if returning and self.rng.random() < 0.15:
                ref = returning.pop(0)  # a patient coming back for another concern
            c = self.course(indication, numbers[indication], ref)
            returning.append(c.patient_ref)
            opened_ago = self.rng.randint(5, HISTORY_DAYS)
            opened = self.moment(self.today - dt.timedelta(days=opened_ago))
            c.open(opened, with_patient=self.rng.random() < 0.35)
            flags = [f for f in ("anticoagulants", "diabetes", "heart_condition",
                                 "autoimmune_disease") if self.rng.random() < 0.08]
            consult_day = self.day_of(opened) + dt.timedelta(days=self.rng.choice((0, 0, 3, 7)))
            if consult_day >= self.today:
                continue  # consultation still to come: the course stays open
            consulted = self.moment(consult_day, after=opened)
            c.consult(consulted, self.rng.choice(("dr-morel", "dr-okafor", "nurse-lindqvist")),
                      flags=flags, notes=self.rng.random() < 0.3)
            first = consult_day + dt.timedelta(days=self.rng.choice((0, 0, 7, 14)))
            c.run_sessions(first, lapse_after=self.rng.choice((3, 4)) if i % 13 == 5 else None)
