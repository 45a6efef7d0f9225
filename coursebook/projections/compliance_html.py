"""The compliance report as one self-contained HTML page (`compliance --html FILE`).

The page is made for a clinic of thousands of courses: what a reader sees first is in
the markup (counts by code and severity with each code explained, the clinic's findings,
one collapsed line per course, worst first, and a filter by severity, code and
practitioner made of radio buttons and CSS alone). What a reader sees only on opening a
course (its findings in full and its spacing timeline) is one compact JSON block that a
small inline script draws when the section is opened: a browser then parses a few
thousand lines instead of a hundred thousand elements. No external asset; the template
autoescapes every value and the script inserts data as text, never as markup. The only
patient identifier on the page is the pseudonymous `patient_ref`.

The timeline (`timeline`) draws the sessions on a date axis, the window each session was
allowed in (from the rule recorded with it) shaded, the window of the next session,
overrides, reactions, reviews and the as-of moment.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import jinja2
import markupsafe

from coursebook.domain import rules
from coursebook.domain.course_state import CourseState
from coursebook.projections.compliance import (
    CODES,
    MEANING,
    SEVERITIES,
    SEVERITY,
    Finding,
    Report,
)
from coursebook.projections.course_view import iso

__all__ = ["render_html", "timeline"]

WIDTH = 1100
LEFT, RIGHT = 120, 30
PADDING_DAYS = 4
LANE = {"window": 40, "session": 78, "reaction": 122, "axis": 150}
HEIGHT = 185

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("coursebook", "projections/templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


@attrs.frozen
class _Axis:
    start: dt.date
    days: int
    zone: ZoneInfo

    @property
    def per_day(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.days

    def day(self, day: dt.date) -> float:
        return round(LEFT + (day - self.start).days * self.per_day, 1)

    def instant(self, instant: dt.datetime) -> float:
        local = instant.astimezone(self.zone)
        midnight = dt.datetime.combine(self.start, dt.time(), tzinfo=self.zone)
        days = (local - midnight).total_seconds() / 86400
        return round(LEFT + days * self.per_day, 1)


_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")
"""A UTC timestamp in a finding's detail: shown, as every time on the page, locally."""


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def _local(instant: dt.datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def timeline(state: CourseState, findings: list[Finding], *, as_of: dt.datetime,
             zone: ZoneInfo) -> dict[str, Any]:
    """The drawing of one course's spacing timeline: plain shapes and labels, in pixels."""
    today = rules.local_date(as_of, zone)
    window = rules.next_window(state, zone)
    dates = [rules.local_date(state.opened_at, zone), today]
    dates += [rules.local_date(s.at, zone) for s in state.sessions]
    dates += [rules.local_date(r.at, zone) for r in state.reactions]
    dates += [rules.local_date(r.reviewed_at, zone) for r in state.reactions if r.reviewed_at]
    if window is not None and window["latest"] is not None:
        dates.append(dt.date.fromisoformat(window["latest"]))
    for previous, session in zip(state.sessions, state.sessions[1:], strict=False):
        if session.rule is not None:
            dates.append(rules.local_date(previous.at, zone)
                         + dt.timedelta(days=session.rule.max_days))
    start = min(dates) - dt.timedelta(days=PADDING_DAYS)
    end = max(dates) + dt.timedelta(days=PADDING_DAYS + 1)
    axis = _Axis(start, (end - start).days, zone)

    flagged: dict[int, list[str]] = {}
    for finding in findings:
        if finding.session_no is not None:
            flagged.setdefault(finding.session_no, []).append(finding.code)

    windows: list[dict[str, Any]] = []
    for previous, session in zip(state.sessions, state.sessions[1:], strict=False):
        if session.rule is None:
            continue
        base = rules.local_date(previous.at, zone)
        low = base + dt.timedelta(days=session.rule.min_days)
        high = base + dt.timedelta(days=session.rule.max_days)
        target = base + dt.timedelta(days=session.rule.target_days)
        windows.append({
            "x": axis.day(low), "width": round(axis.day(high + dt.timedelta(days=1))
                                               - axis.day(low), 1),
            "target_x": axis.day(target) + axis.per_day / 2, "next": False,
            "row": len(windows) % 2,
            "label": f"#{session.session_no}",
            "title": (f"window for session {session.session_no}: {low} .. {high} "
                      f"(target {target}; rule {session.rule.source})")})
    if window is not None and window["latest"] is not None:
        low, high = (dt.date.fromisoformat(window["earliest"]),
                     dt.date.fromisoformat(window["latest"]))
        windows.append({
            "x": axis.day(low), "width": round(axis.day(high + dt.timedelta(days=1))
                                               - axis.day(low), 1),
            "target_x": axis.day(dt.date.fromisoformat(window["target"])) + axis.per_day / 2,
            "next": True, "label": f"next #{window['session_no']}", "row": len(windows) % 2,
            "title": (f"window for the next session {window['session_no']}: {low} .. {high} "
                      f"(target {window['target']})")})

    sessions = []
    for session in state.sessions:
        codes = flagged.get(session.session_no, [])
        kind = ("overridden" if "SPACING_OVERRIDDEN" in codes else
                "exceeded" if "SPACING_EXCEEDED" in codes else "ok")
        notes = [f"session {session.session_no} given {_local(session.at, zone)} "
                 f"by {session.actor}"]
        if session.gap_days is not None:
            notes.append(f"{session.gap_days} days after the previous one")
        if session.spacing_override_reason:
            notes.append(f"spacing override: {session.spacing_override_reason}")
        if session.overrides:
            notes.append("under overridden " + ", ".join(o.code for o in session.overrides))
        if session.cautions:
            notes.append("cautions " + ", ".join(session.cautions))
        sessions.append({"x": axis.instant(session.at), "label": f"#{session.session_no}",
                         "kind": kind, "override": bool(session.overrides),
                         "cautions": bool(session.cautions), "title": "; ".join(notes)})

    reactions = []
    for reaction in state.reactions:
        item: dict[str, Any] = {
            "x": axis.instant(reaction.at), "severe": reaction.severe,
            "label": f"S{reaction.severity}",
            "title": (f"reaction to session {reaction.session_no}: {reaction.kind}, "
                      f"severity {reaction.severity}, {_local(reaction.at, zone)}"),
            "deadline_x": None, "review_x": None, "late": False}
        if reaction.severe:
            deadline = reaction.at + dt.timedelta(hours=48)
            item["deadline_x"] = axis.instant(deadline)
            if reaction.reviewed_at is not None:
                item["review_x"] = axis.instant(reaction.reviewed_at)
                item["late"] = reaction.reviewed_at > deadline
                item["review_title"] = (f"reviewed {_local(reaction.reviewed_at, zone)} by "
                                        f"{reaction.reviewed_by}: {reaction.decision}")
        reactions.append(item)

    ticks: list[dict[str, Any]] = []
    months = [day for day in _days(start, end) if day.day == 1] or [start]
    majors = [axis.day(day) for day in months]
    for day, x in zip(months, majors, strict=True):
        ticks.append({"x": x, "label": day.strftime("%b %Y"), "major": True})
    if axis.per_day * 7 >= 24:  # room for a tick every Monday
        for day in _days(start, end):
            x = axis.day(day)
            if day.weekday() == 0 and day.day != 1 and all(abs(x - m) > 46 for m in majors):
                ticks.append({"x": x, "label": str(day.day), "major": False})

    overdue = None
    if window is not None and window["latest"] is not None:
        for finding in findings:
            if finding.code == "OVERDUE":
                overdue = {"x": axis.instant(finding.at),
                           "title": f"overdue since {_local(finding.at, zone)}"}
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "lane": LANE, "ticks": ticks, "windows": windows, "sessions": sessions,
            "reactions": reactions, "overdue": overdue,
            "as_of_x": axis.instant(as_of), "as_of_label": f"as of {today}",
            "opened_x": axis.instant(state.opened_at)}


def _detail_rows(detail: dict[str, Any], zone: ZoneInfo) -> list[tuple[str, str]]:
    rows = []
    for key, value in detail.items():
        if value is None or value == []:
            continue
        if isinstance(value, str) and _INSTANT.fullmatch(value):  # as the page's other times
            value = _local(dt.datetime.fromisoformat(value), zone)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, dict) and set(value) == {"name", "version"}:
            value = f"{value['name']} v{value['version']}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        rows.append((key.replace("_", " "), str(value)))
    return rows


#: Each code in plain words: what happened, and the rule that judged it.
EXPLANATIONS: dict[str, str] = {
    "REACTION_UNREVIEWED": "A reaction of severity 3 or more was not reviewed by a physician "
                           "within 48 hours of when it happened (a later review does not "
                           "remove this).",
    "SPACING_OVERRIDDEN": "A session was given sooner than the protocol's minimum spacing "
                          "after the previous one, with a stated reason.",
    "SPACING_EXCEEDED": "A session was given later than the protocol's maximum spacing after "
                        "the previous one.",
    "OVERDUE": "The course's next session is past the last day its spacing rule allows; the "
               "finding names the rule that set that day (an interval adjusted later can "
               "make a course overdue) and the day it became overdue.",
    "CONTRAINDICATION_OVERRIDDEN": "A session was given while an absolute contraindication "
                                   "was in force, overridden with a justification by a "
                                   "physician.",
    "SEVERE_REACTION": "A reaction of severity 3 or more was reported.",
    "GIVEN_WITH_CAUTIONS": "A session was given while relative contraindications were in "
                           "force (allowed, and worth knowing).",
    "LICENSE_EXPIRING": "A practitioner's licence expires within 30 days.",
    "INTERVAL_BELOW_PROTOCOL": "A session was given under an interval adjusted for the "
                               "course whose minimum spacing is shorter than the "
                               "protocol's own (raised when the catalogue asks for a "
                               "physician's attention to that); the finding names who "
                               "adjusted it and why.",
    "SCREENING_INCONSISTENT": "The consultation's medication list names a blood thinner "
                              "while its anticoagulants answer was no (the medication "
                              "itself is never shown).",
    "FOLLOW_UP_MISSED": "The follow-up the catalogue asks for after a session was not "
                        "recorded by its last allowed day.",
    "AFTERCARE_NOT_RECORDED": "A session was given without recording the aftercare "
                              "instructions handed to the patient.",
}

#: The detail fields that name a practitioner (staff ids, not personal data).
_STAFF_FIELDS = ("given_by", "practitioner_id", "reported_by", "overridden_by", "actor",
                 "by")


def _staff(finding: Finding) -> set[str]:
    return {str(finding.detail[key]) for key in _STAFF_FIELDS
            if isinstance(finding.detail.get(key), str)}


def _round(drawing: dict[str, Any]) -> dict[str, Any]:
    """The drawing with every coordinate a whole pixel (fewer bytes, same picture)."""
    def whole(value: Any) -> Any:
        if isinstance(value, float):
            return round(value)
        if isinstance(value, dict):
            return {k: whole(v) for k, v in value.items()}
        if isinstance(value, list):
            return [whole(v) for v in value]
        return value
    return {k: whole(v) for k, v in drawing.items()}


def _infos(findings: list[Finding]) -> str:
    """A course's information findings in one line, by code: `GIVEN_WITH_CAUTIONS at
    sessions 1, 2, 3 (DIABETES)`."""
    grouped: dict[str, tuple[list[str], set[str]]] = {}
    for finding in findings:
        sessions, codes = grouped.setdefault(finding.code, ([], set()))
        if finding.session_no is not None:
            sessions.append(str(finding.session_no))
        found = finding.detail.get("codes")
        if isinstance(found, list):
            codes.update(str(code) for code in found)
    parts = []
    for code, (sessions, codes) in grouped.items():
        text = code + (f" at session{'s' if len(sessions) > 1 else ''} {', '.join(sessions)}"
                       if sessions else "")
        parts.append(text + (f" ({', '.join(sorted(codes))})" if codes else ""))
    return "; ".join(parts)


def _finding_row(finding: Finding, zone: ZoneInfo) -> dict[str, Any]:
    # The course's protocol is in its section's header; a "no" says nothing more.
    detail = {key: value for key, value in finding.detail.items()
              if key != "protocol" and value is not False}
    row = {**finding.as_dict(), "local": _local(finding.at, zone), "lead": None,
           "rows": _detail_rows(detail if finding.course_id else finding.detail, zone)}
    if finding.code == "OVERDUE":
        rule = finding.detail.get("rule") or "the spacing rule"
        row["lead"] = (f"overdue since {_local(finding.at, zone)} under {rule} "
                       f"(latest day {finding.detail.get('latest')})")
    return row


def _packed_finding(row: dict[str, Any]) -> list[Any]:
    """A finding as the page's script reads it: `[local time, severity, code, session or
    null, lead or null, "key: value; …"]`."""
    return [row["local"], row["severity"], row["code"], row["session_no"], row["lead"],
            "; ".join(f"{key}: {value}" for key, value in row["rows"])]


def _packed_timeline(drawing: dict[str, Any]) -> dict[str, Any]:
    """A drawing (`timeline`) in whole pixels and short arrays: the script's input.
    Sessions: `[x, number, kind (0 ok, 1 overridden, 2 exceeded), overridden
    contraindication, cautions, title (flagged sessions only)]`."""
    kinds = {"ok": 0, "overridden": 1, "exceeded": 2}
    d = _round(drawing)
    sessions = []
    for item in d["sessions"]:
        flagged = item["kind"] != "ok" or item["override"]
        sessions.append([item["x"], item["label"][1:], kinds[item["kind"]],
                         int(item["override"]), int(item["cautions"]),
                         item["title"] if flagged else ""])
    reactions = [[r["x"], int(r["severe"]), r["title"], r["deadline_x"], r["review_x"],
                  int(r["late"]), r.get("review_title", "")] for r in d["reactions"]]
    return {"o": d["opened_x"], "n": d["as_of_x"],
            "w": [[w["x"], w["width"], w["target_x"], w["row"], int(w["next"])]
                  for w in d["windows"]],
            "s": sessions, "r": reactions,
            "t": [[t["x"], t["label"]] for t in d["ticks"] if t["major"]],
            "d": None if d["overdue"] is None else [d["overdue"]["x"], d["overdue"]["title"]]}


def _script_json(value: Any) -> markupsafe.Markup:
    """JSON safe inside a `<script>` element: no `<` can end it or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    safe = (text.replace("<", "\\u003c").replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029"))
    return markupsafe.Markup(safe)  # noqa: S704 -- no "<" left: it cannot become markup


def _short(values: set[str], limit: int = 4) -> str:
    ordered = sorted(values)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def _behind(findings: list[Finding], report: Report) -> dict[str, str]:
    """Per code, the rules and catalogue versions its findings were judged under:
    `catalogue default@2; parameter follow_up_days; protocols default/… v2`."""
    seen: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for finding in findings:
        catalogues, parameters, protocols = seen.setdefault(finding.code,
                                                            (set(), set(), set()))
        catalogue = finding.detail.get("catalogue")
        state = report.courses.get(finding.course_id) if finding.course_id else None
        if not isinstance(catalogue, dict) and state is not None:
            catalogue = state.catalogue
        if isinstance(catalogue, dict) and catalogue.get("name"):
            catalogues.add(f"{catalogue['name']}@{catalogue.get('version')}")
        if isinstance(finding.detail.get("parameter"), str):
            parameters.add(finding.detail["parameter"])
        if state is not None:
            protocols.add(state.protocol.label)
    behind = {}
    for code, (catalogues, parameters, protocols) in seen.items():
        parts = []
        if catalogues:
            parts.append(f"catalogue{'s' if len(catalogues) > 1 else ''} "
                         + _short(catalogues))
        if parameters:
            parts.append(f"parameter{'s' if len(parameters) > 1 else ''} "
                         + _short(parameters))
        if protocols:
            parts.append(f"protocol{'s' if len(protocols) > 1 else ''} " + _short(protocols))
        behind[code] = "; ".join(parts)
    return behind


def render_html(report: Report) -> str:
    """The whole page as one string: the summary first (counts by severity and code, each
    code explained with the rules and catalogues behind it), a filter by severity, code
    and practitioner that needs no script, then the courses worst first: one collapsed
    section each for the courses with a violation or warning (its findings and spacing
    timeline drawn from the page's data when opened), one compact row each for those
    with information only."""
    document = report.document()
    zone = report.zone
    counted = dict.fromkeys(CODES, 0)
    by_course: dict[str | None, list[Finding]] = {}
    for finding in report.findings:
        counted[finding.code] = counted.get(finding.code, 0) + 1
        by_course.setdefault(finding.course_id, []).append(finding)
    by_severity = {severity: sum(n for code, n in counted.items() if SEVERITY[code] == severity)
                   for severity in SEVERITIES}
    affected: dict[str, int | None] = {code: len({
        f.course_id for f in report.findings if f.code == code and f.course_id})
        for code in counted}
    for finding in by_course.get(None, []):  # about the clinic, not a course
        affected[finding.code] = None
    staff = sorted({name for finding in report.findings for name in _staff(finding)} |
                   {s.actor for cid in by_course if cid for s in report.courses[cid].sessions})
    staff_class = {name: f"p{n}" for n, name in enumerate(staff)}
    codes = sorted(counted, key=lambda code: (SEVERITIES.index(SEVERITY[code]),
                                              CODES.index(code)))
    code_class = {code: f"k{n}" for n, code in enumerate(codes)}
    severity_class = {severity: f"s{severity[0]}" for severity in SEVERITIES}

    attention: list[dict[str, Any]] = []
    informed: list[dict[str, Any]] = []
    bodies: dict[str, list[Any]] = {}
    for course_id, own in by_course.items():
        if course_id is None:
            continue
        state = report.courses[course_id]
        tally = Counter(f.severity for f in own)
        people = {s.actor for s in state.sessions} | {n for f in own for n in _staff(f)}
        course: dict[str, Any] = {
            "course_id": course_id,
            "tally": [(severity, tally[severity]) for severity in SEVERITIES
                      if tally[severity]],
            "codes": sorted({f.code for f in own}, key=CODES.index),
            "classes": " ".join(sorted({severity_class[f.severity] for f in own}
                                       | {code_class[f.code] for f in own}
                                       | {staff_class[p] for p in people if p in staff_class})),
            "sort": (-tally["violation"], -tally["warning"], -tally["info"], course_id),
            "infos": _infos([f for f in own if f.severity == "info"])}
        if tally["violation"] or tally["warning"]:
            findings = [_packed_finding(_finding_row(f, zone)) for f in sorted(
                own, key=lambda f: (SEVERITIES.index(f.severity), f.sort_key()))
                if f.severity != "info"]
            facts = [state.patient_ref, int(state.patient_ref in report.erased),
                     state.indication, state.protocol.label, state.status,
                     state.sessions_given, state.planned_sessions]
            bodies[course_id] = [facts, findings, course["infos"], _packed_timeline(
                timeline(state, own, as_of=report.as_of, zone=zone))]
            attention.append(course)
        else:
            informed.append(course)
    attention.sort(key=lambda c: c["sort"])
    informed.sort(key=lambda c: c["sort"])
    clinic = [_finding_row(f, zone) for f in by_course.get(None, [])]
    behind = _behind(report.findings, report)
    data = {"lane": LANE, "w": WIDTH, "h": HEIGHT, "l": LEFT, "r": WIDTH - RIGHT,
            "c": bodies}
    return _environment.get_template("compliance.html.j2").render(
        as_of=document["as_of"], as_of_local=_local(report.as_of, zone),
        known_at=iso(report.known_at), zone=str(zone), course_count=document["courses"],
        finding_count=len(report.findings),
        counts=[(code, SEVERITY[code], counted[code], affected[code],
                 EXPLANATIONS.get(code) or MEANING.get(code, ""), behind.get(code, ""))
                for code in codes],
        severities=[(severity, severity_class[severity]) for severity in SEVERITIES],
        by_severity=by_severity,
        codes=[(code_class[code], code) for code in codes if affected[code]],
        staff=[(staff_class[name], name) for name in staff],
        attention=attention, informed=informed, clinic=clinic, width=WIDTH, lane=LANE,
        data=_script_json(data), what_if=report.what_if)
