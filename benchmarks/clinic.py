"""A synthetic clinic: a seeded stream of public commands, as a clinic backend sends them.

`clinic_commands(courses, seed=)` returns the whole history of `courses` treatment courses
(plus the staff's registrations) as JSON-like command dicts, interleaved in the order the
clinic would have sent them (by `at`). It covers every indication of the default
catalogue and the life of a real course: consultations (some with relative and absolute
contraindications, the absolute ones overridden by a physician), sessions scheduled,
rescheduled and cancelled, sessions given (some sooner than the protocol allows, with a
recorded override reason), reactions (mild and severe) and their reviews, interval
adjustments, plan extensions, pauses and resumptions, completion (into maintenance where
the protocol has one) and discontinuation, and about 3 % of commands the engine refuses
(too soon without a reason, unknown course, a nurse overriding, a lot past its expiry, a
retried command id with another body) plus retried duplicates.

`long_course(events)` is one course with about `events` events (a skin course kept in
maintenance for years, with reactions, reschedules and adjustments along the way).

Everything is decided by the seed: two runs produce the same commands.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

from coursebook.domain.protocols import INDICATIONS, default_catalogue

__all__ = ["END", "START", "ZONE", "clinic_commands", "long_course", "staff_commands"]

ZONE = "Europe/Paris"
START = dt.datetime(2023, 1, 2, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2027, 12, 31, 12, 0, tzinfo=dt.UTC)
"""After every fact: the moment the compliance report is asked about."""

STAFF = (("dr-ada", "physician"), ("dr-bo", "physician"), ("nurse-cy", "nurse"),
         ("nurse-di", "nurse"), ("aes-eli", "aesthetician"))
PHYSICIANS = ("dr-ada", "dr-bo")
NURSES = ("nurse-cy", "nurse-di")
CLEAR = {"pregnant": False, "breastfeeding": False, "active_infection_at_site": False,
         "bleeding_disorder": False, "anticoagulants": False, "autoimmune_disease": False,
         "diabetes": False, "heart_condition": False, "allergies": [], "medications": []}
PRODUCTS = {
    "skin_rejuvenation": "Non-cross-linked hyaluronic acid 20 mg/ml",
    "hair_restoration": "Hair revitalising peptide complex",
    "fat_reduction": "Deoxycholic acid 10 mg/ml",
    "cellulite": "Phosphatidylcholine 5% lipolytic solution",
    "pigmentation": "Tranexamic acid 4 mg/ml",
}
AREAS = {"skin_rejuvenation": ["face"], "hair_restoration": ["scalp"],
         "fat_reduction": ["submental"], "cellulite": ["thighs"], "pigmentation": ["cheeks"]}


def _iso(instant: dt.datetime) -> str:
    return instant.isoformat()


def staff_commands() -> list[dict[str, Any]]:
    return [{"command": "register_practitioner", "command_id": f"reg-{pid}",
             "at": _iso(START - dt.timedelta(days=1)), "actor": "clinic-admin",
             "practitioner_id": pid, "name": f"Synthetic {role}", "role": role,
             "license_number": f"LIC-{pid}", "license_expires_on": "2031-12-31"}
            for pid, role in STAFF]


class _Course:
    """The commands of one course, in time order, with the odd refused one."""

    def __init__(self, rng: random.Random, n: int, opened: dt.datetime,
                 indication: str | None = None, course_id: str | None = None) -> None:
        self.rng = rng
        self.course_id = course_id or f"C-{n:06d}"
        self.indication = indication or INDICATIONS[n % len(INDICATIONS)]
        self.protocol = default_catalogue().get(self.indication)
        self.out: list[dict[str, Any]] = []
        self.ids = 0
        self.now = opened
        self.may_discontinue = True

    def cmd(self, name: str, at: dt.datetime, actor: str, **fields: Any) -> dict[str, Any]:
        self.ids += 1
        command = {"command": name, "command_id": f"{self.course_id}-{self.ids}",
                   "at": _iso(at), "actor": actor, "course_id": self.course_id, **fields}
        self.out.append(command)
        return command

    def product(self, expires: str = "2031-06-30") -> list[dict[str, str]]:
        return [{"name": PRODUCTS[self.indication], "lot": f"LOT-{self.rng.randrange(999)}",
                 "expires_on": expires}]

    def consult(self) -> None:
        rng = self.rng
        screening = dict(CLEAR)
        absolute = rng.random() < 0.04
        if rng.random() < 0.2:
            screening[rng.choice(["diabetes", "anticoagulants", "heart_condition",
                                  "autoimmune_disease"])] = True
        if absolute:
            screening["active_infection_at_site"] = True
        if rng.random() < 0.1:
            screening["allergies"] = ["latex"]
        self.cmd("record_consultation", self.now, rng.choice(NURSES + PHYSICIANS),
                 consent=True, screening=screening)
        if absolute:
            self.now += dt.timedelta(hours=1)
            if rng.random() < 0.5:  # a nurse may not override: refused, then the physician
                self.cmd("override_contraindication", self.now, "nurse-cy",
                         code="ACTIVE_INFECTION",
                         justification="Infection resolved, confirmed by swab this week")
            self.cmd("override_contraindication", self.now, rng.choice(PHYSICIANS),
                     code="ACTIVE_INFECTION",
                     justification="Infection resolved, confirmed by swab this week")

    def give(self, session_no: int, gap_days: int | None) -> None:
        rng = self.rng
        if gap_days is not None:
            rule = self.protocol.rule_for(session_no)
            gap = gap_days
            if gap < rule.min_days and rng.random() < 0.5:
                # first refused for want of a reason, then given with one
                self.now += dt.timedelta(days=gap)
                self.cmd("give_session", self.now, rng.choice(NURSES), products=self.product(),
                         areas=AREAS[self.indication], dose_ml=2.0, anaesthetic=None)
                self.now -= dt.timedelta(days=gap)
            planned = self.now + dt.timedelta(days=gap, hours=rng.choice([0, 2, 5]))
            self.cmd("schedule_session", self.now + dt.timedelta(hours=1), "aes-eli",
                     planned_at=_iso(planned), practitioner_id=rng.choice(NURSES),
                     **({"spacing_override_reason": "Patient travels abroad for work"}
                        if gap < rule.min_days else {}))
            if rng.random() < 0.15:
                planned += dt.timedelta(days=1)
                self.cmd("reschedule_session", self.now + dt.timedelta(hours=2), "aes-eli",
                         session_no=session_no, planned_at=_iso(planned),
                         reason="Patient asked for the next day",
                         **({"spacing_override_reason": "Patient travels abroad for work"}
                            if gap + 1 < rule.min_days else {}))
            elif rng.random() < 0.03:
                self.cmd("cancel_session", self.now + dt.timedelta(hours=2), "aes-eli",
                         session_no=session_no, reason="Clinic closed that day")
            self.now = planned
            extra = ({"spacing_override_reason": "Patient travels abroad for work"}
                     if gap < rule.min_days else {})
        else:
            extra = {}
        if rng.random() < 0.01:  # a lot past its expiry: refused
            self.cmd("give_session", self.now, rng.choice(NURSES),
                     products=self.product("2022-01-31"), areas=AREAS[self.indication],
                     dose_ml=2.0, anaesthetic=None, **extra)
        self.cmd("give_session", self.now, rng.choice(NURSES), products=self.product(),
                 areas=AREAS[self.indication], dose_ml=round(rng.uniform(1.0, 4.0), 1),
                 anaesthetic="Lidocaine HCl 2%" if rng.random() < 0.3 else None, **extra)
        if rng.random() < 0.12:
            severity = rng.choice([1, 1, 2, 2, 3, 4])
            reported = self.now + dt.timedelta(hours=rng.choice([4, 20, 30]))
            self.cmd("report_reaction", reported, rng.choice(NURSES), session_no=session_no,
                     kind=rng.choice(["redness", "swelling", "bruising", "nodules"]),
                     severity=severity)
            if severity >= 3:
                reviewed = reported + dt.timedelta(hours=rng.choice([3, 20, 70]))
                self.cmd("review_reaction", reviewed, rng.choice(PHYSICIANS),
                         session_no=session_no,
                         decision="discontinue" if self.may_discontinue and rng.random() < 0.1
                         else "continue")
                self.now = max(self.now, reviewed)

    def gap(self, session_no: int) -> int:
        rule = self.protocol.rule_for(session_no)
        roll = self.rng.random()
        if roll < 0.06:
            return max(1, rule.min_days - self.rng.choice([2, 3]))  # too soon
        if roll < 0.12:
            return rule.max_days + self.rng.choice([3, 10])  # late
        return self.rng.randint(rule.min_days, rule.max_days)

    def story(self, patient_ref: str) -> list[dict[str, Any]]:
        rng = self.rng
        planned = self.protocol.default_sessions
        self.cmd("open_course", self.now, "frontdesk", patient_ref=patient_ref,
                 indication=self.indication, planned_sessions=planned,
                 patient={"name": "Synthetic Patient", "birth_date": "1984-05-17"})
        self.now += dt.timedelta(minutes=30)
        self.consult()
        self.now += dt.timedelta(hours=2)
        self.give(1, None)
        session = 1
        if rng.random() < 0.1:
            planned += 2
            self.cmd("extend_plan", self.now + dt.timedelta(hours=1), rng.choice(PHYSICIANS),
                     planned_sessions=planned, reason="Slower response than expected")
        while session < planned:
            if self.out[-1].get("decision") == "discontinue":
                return self.out
            if rng.random() < 0.04:
                self.cmd("pause_course", self.now + dt.timedelta(days=1), "aes-eli",
                         reason="Patient on holiday")
                self.now += dt.timedelta(days=20)
                self.cmd("resume_course", self.now, "aes-eli", reason="Back from holiday")
            if rng.random() < 0.03:
                rule = self.protocol.rule_for(session + 1)
                self.cmd("adjust_interval", self.now + dt.timedelta(hours=3),
                         rng.choice(PHYSICIANS), min_days=rule.min_days + 2,
                         target_days=rule.target_days + 2, max_days=rule.max_days + 4,
                         reason="Skin needs longer to recover")
            session += 1
            self.give(session, self.gap(session))
        end = self.now + dt.timedelta(hours=3)
        if rng.random() < 0.05:
            self.cmd("discontinue_course", end, "aes-eli", reason="Patient moved away")
        elif rng.random() < 0.85:
            self.cmd("complete_course", end, "aes-eli")
        return self.out


def clinic_commands(courses: int, *, seed: int = 2026) -> list[dict[str, Any]]:
    """The clinic's commands in the order they were sent (by `at`), staff first; about 13
    commands per course, of which about 3 % are refused and 1 % are retried duplicates."""
    rng = random.Random(seed)
    stories: list[dict[str, Any]] = []
    span = (END - START - dt.timedelta(days=700)).total_seconds()
    for n in range(courses):
        opened = START + dt.timedelta(seconds=int(span * n / max(1, courses)))
        opened = opened.replace(hour=8 + n % 9, minute=0)
        patient = f"P-{n // 2:06d}"  # most patients have two courses
        stories.extend(_Course(rng, n, opened).story(patient))
    for command in rng.sample(stories, k=max(1, len(stories) // 100)):
        stories.append(dict(command))  # a retry of the very same command: duplicate
    stories.append({**stories[0], "actor": "someone-else"})  # same id, other body
    stories.append({"command": "give_session", "command_id": "nowhere-1",
                    "at": _iso(START), "actor": "nurse-cy", "course_id": "no-such-course",
                    "products": [{"name": "X", "lot": "L", "expires_on": "2030-01-01"}],
                    "areas": ["face"], "dose_ml": 1.0, "anaesthetic": None})
    stories.sort(key=lambda c: dt.datetime.fromisoformat(c["at"]))
    return staff_commands() + stories


def long_course(events: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """One skin course of about `events` events: a full course, then years of
    maintenance sessions, each scheduled, some rescheduled, reacted to and reviewed, the
    screening renewed before it goes stale (default@2 refuses a session after it)."""
    rng = random.Random(seed)
    course = _Course(rng, 0, START, indication="skin_rejuvenation", course_id="LONG-1")
    course.may_discontinue = False
    course.cmd("open_course", course.now, "frontdesk", patient_ref="P-LONG",
               indication="skin_rejuvenation", planned_sessions=4)
    course.now += dt.timedelta(minutes=30)
    course.cmd("record_consultation", course.now, "nurse-cy", consent=True,
               screening={**CLEAR, "diabetes": True})
    screened = course.now
    course.now += dt.timedelta(hours=2)
    course.give(1, None)
    for session in range(2, 5):
        course.give(session, 21)
    course.cmd("complete_course", course.now + dt.timedelta(hours=2), "aes-eli")
    session = 4
    while len(course.out) < events * 1.23:  # about 1 in 6 is refused (too soon)
        if course.now - screened > dt.timedelta(days=150):  # the screening kept current
            course.now += dt.timedelta(hours=1)
            course.cmd("record_consultation", course.now, "nurse-cy", consent=True,
                       screening={**CLEAR, "diabetes": True})
            screened = course.now
        session += 1
        course.give(session, rng.randint(1, 2))  # every day or two: needs the override
    return course.out


def iter_lines(commands: list[dict[str, Any]]) -> Iterator[bytes]:
    import orjson

    for command in commands:
        yield orjson.dumps(command)
