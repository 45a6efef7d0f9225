"""Files for other tools: the calendar as iCalendar (RFC 5545), the audit trail and a
lot's recall as CSV (the recall's text cells formula-safe: a cell a spreadsheet would
read as a formula is written with a leading apostrophe).

iCalendar: one VEVENT per calendar entry, in the clinic's zone. A planned session is a
30-minute event at its planned time; an unplanned one is an all-day event on its target
date, spanning nothing else (the window is in the description). A VEVENT rather than a
VTODO with DUE = latest: a front desk books appointments in a calendar, and calendar
clients show events on the day while many hide or ignore to-dos. The UID is derived from
the store's identity, the course and the session number
(`<course_id>.session-<n>.<store>@coursebook`): the same in every export of one store and
never the same between two clinics, so exporting again after a reschedule updates the
entry instead of duplicating it. SEQUENCE is the course's version and LAST-MODIFIED the
recording time of its last event, so both grow when a session moves (clients that
import rather than subscribe take the newer one); DTSTAMP is the export's moment. The
VTIMEZONE is icalendar's own, generated from the zone's rules for the years the entries
span. Blocked entries say so in their summary (`BLOCKED: CODES`), carry STATUS:TENTATIVE
and the category `blocked`. Nothing personal is written: the patient appears by
`patient_ref`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from icalendar import Calendar, Event, Timezone

__all__ = ["AUDIT_CSV_COLUMNS", "RECALL_CSV_COLUMNS", "audit_csv", "calendar_ics", "entry_uid",
           "neutralise", "recall_csv"]

SESSION_LENGTH = dt.timedelta(minutes=30)
RECALL_CSV_COLUMNS = ("at", "course_id", "session_no", "actor", "patient_ref",
                      "product_name", "product_lot", "product_expires_on", "course_status",
                      "patient_erased")
AUDIT_CSV_COLUMNS = ("position", "recorded_at", "at", "subject", "event", "actor", "reason",
                     "detail")


def entry_uid(entry: Mapping[str, Any], store: str = "") -> str:
    scope = f".{store}" if store else ""
    return f"{entry['course_id']}.session-{entry['session_no']}{scope}@coursebook"


def course_revisions(audit: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, str]]:
    """Course id -> (its number of events, the recording time of the last one), from the
    audit trail: what SEQUENCE and LAST-MODIFIED of its calendar entry are made of."""
    out: dict[str, tuple[int, str]] = {}
    for row in audit:
        subject = row["subject"]
        count = out.get(subject, (0, ""))[0]
        out[subject] = (count + 1, row["recorded_at"])
    return out


def _span(entries: list[Mapping[str, Any]], stamp: dt.datetime) -> tuple[dt.date, dt.date]:
    days = [dt.date.fromisoformat(e["target"]) for e in entries]
    days.append(stamp.date())
    return (dt.date(min(days).year - 1, 1, 1), dt.date(max(days).year + 2, 1, 1))


def calendar_ics(entries: Iterable[Mapping[str, Any]], zone: ZoneInfo, *,
                 stamp: dt.datetime, store: str = "",
                 revisions: Mapping[str, tuple[int, str]] | None = None) -> bytes:
    """The calendar as an RFC 5545 document, times in `zone` (see the module's text);
    `store` scopes the UIDs, `revisions` (`course_revisions`) gives SEQUENCE and
    LAST-MODIFIED."""
    entries = list(entries)
    first, last = _span(entries, stamp)
    cal = Calendar()
    cal.add("prodid", "-//coursebook//calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "coursebook: next sessions")
    cal.add("x-wr-timezone", zone.key)
    cal.add_component(Timezone.from_tzinfo(zone, tzid=zone.key, first_date=first,
                                           last_date=last))
    for entry in entries:
        event = Event()
        event.add("uid", entry_uid(entry, store))
        event.add("dtstamp", stamp.astimezone(dt.UTC))
        revision = (revisions or {}).get(entry["course_id"])
        if revision is not None:
            event.add("sequence", revision[0])
            event.add("last-modified",
                      dt.datetime.fromisoformat(revision[1]).astimezone(dt.UTC))
        blocked = list(entry["blocked_by"])
        title = f"{entry['course_id']}: session {entry['session_no']}"
        if blocked:
            title = f"BLOCKED: {', '.join(blocked)} - {title}"
        event.add("summary", title)
        if entry["planned_at"] is not None:
            start = dt.datetime.fromisoformat(entry["planned_at"]).astimezone(zone)
            event.add("dtstart", start)
            event.add("dtend", start + SESSION_LENGTH)
        else:
            day = dt.date.fromisoformat(entry["target"])
            event.add("dtstart", day)
            event.add("dtend", day + dt.timedelta(days=1))
            event.add("transp", "TRANSPARENT")
        lines = [f"Course {entry['course_id']}, patient {entry['patient_ref']}, "
                 f"session {entry['session_no']}",
                 f"Window: earliest {entry['earliest']}, target {entry['target']}, "
                 f"latest {entry['latest'] or 'open'}"]
        if entry.get("practitioner_id"):
            lines.append(f"Practitioner: {entry['practitioner_id']}")
        if entry["cautions"]:
            lines.append(f"Cautions: {', '.join(entry['cautions'])}")
        if blocked:
            lines.append(f"Blocked by: {', '.join(blocked)}")
        event.add("description", "\n".join(lines))
        event.add("status", "TENTATIVE" if blocked or entry["planned_at"] is None
                  else "CONFIRMED")
        categories = ["coursebook", *(["blocked"] if blocked else []),
                      *(c.lower() for c in entry["cautions"])]
        event.add("categories", categories)
        cal.add_component(event)
    data: bytes = cal.to_ical()
    return data


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
"""A spreadsheet reads a cell starting with one of these as a formula (or strips the
whitespace and then does): such a cell is written with a leading `'`."""
EXCEL_BOM = "\ufeff"


def neutralise(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs: `=HYPERLINK(...)` becomes
    `'=HYPERLINK(...)` (the `'` is what spreadsheets themselves use to mean "text")."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def audit_csv(entries: Iterable[Mapping[str, Any]], *, excel: bool = False) -> str:
    """The audit trail as CSV (RFC 4180; `detail` as compact JSON in its own column), every text
    cell neutralised against formula injection; `excel` starts it with the UTF-8
    byte-order mark by which Excel recognises UTF-8."""
    out = io.StringIO()
    if excel:
        out.write(EXCEL_BOM)
    # CRLF, as RFC 4180 has it: the writer then also quotes a cell holding a lone CR
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_CSV_COLUMNS)
    for entry in entries:
        writer.writerow([neutralise("" if entry[c] is None else
                                    orjson.dumps(entry[c]).decode() if c == "detail"
                                    else entry[c])
                         for c in AUDIT_CSV_COLUMNS])
    return out.getvalue()



def recall_csv(sessions: Iterable[Mapping[str, Any]]) -> str:
    """A recall's sessions as CSV, one row per session, every text cell formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RECALL_CSV_COLUMNS)
    for s in sessions:
        product = s["product"]
        row = [s["at"], s["course_id"], s["session_no"], s["actor"], s["patient_ref"],
               product["name"], product["lot"], product["expires_on"], s["course_status"],
               "true" if s["patient_erased"] else "false"]
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return out.getvalue()
