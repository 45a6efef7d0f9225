"""`coursebook demo`: a realistic sample clinic, built through the public commands.

The story (`demo_clinic.ClinicScript`) is a seeded list of commands dated relative to
now. It is applied in the order of its valid times to a fresh store, each command
recorded a few minutes after the act (the store's clock follows the story and never
passes the real now), so `--known-at` and `--as-of` both have a history to travel.

Where it goes: `./coursebook-demo.db`, recreated on each run (with its -wal/-shm and key
files), unless the global `--db` names a target, which must not hold a store yet (exit 2
otherwise): the demo never writes into an existing store.

What it prints is a list of sections (`SECTIONS`): each builds one part of the JSON
document from the finished `DemoRun` and renders it as tables (store, commands, courses,
a featured course, the calendar, compliance with its HTML page); a new section is one
more entry in `SECTIONS`.
Personal data (patient names, birth dates, screening answers, notes) is never printed.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from coursebook import Coursebook
from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_STORE,
    Context,
    emit,
    local_time,
    table,
    user_error,
)
from coursebook.adapters.entrypoints.export_files import ExportRefused, write_export
from coursebook.adapters.entrypoints.sample_clinic import (
    DEMO_SEED,
    DEMO_ZONE,
    FEATURED_COURSE,
    ClinicScript,
    Step,
)
from coursebook.bootstrap import is_postgres, open_store, safe_target
from coursebook.clock import Clock, FixedClock, SystemClock
from coursebook.errors import Rejected, StoreUnavailable
from coursebook.logs import configure_logging

__all__ = ["DEMO_TARGET", "SECTIONS", "DemoRun", "Section", "build_demo", "run_demo"]

DEMO_TARGET = "coursebook-demo.db"
"""The default demo store, relative to the working directory."""


# -- building ----------------------------------------------------------------------------
@attrs.define
class Result:
    """What the engine answered to one step."""

    step: Step
    outcome: str  # "applied" | "duplicate" | "rejected"
    code: str | None = None
    message: str | None = None

    @property
    def as_intended(self) -> bool:
        if self.step.expect is None:
            return self.outcome in ("applied", "duplicate")
        return self.outcome == "rejected" and self.code == self.step.expect


@attrs.define
class DemoRun:
    """A finished demo: the store (still open), the story, and what the engine answered."""

    app: Coursebook
    target: str
    now: dt.datetime
    script: ClinicScript
    results: list[Result]

    @property
    def course_ids(self) -> list[str]:
        opened = {r.step.body["course_id"] for r in self.results
                  if r.step.command == "open_course" and r.outcome == "applied"}
        return [c for c in self.script.courses if c in opened]

    @property
    def display_target(self) -> str:
        if is_postgres(self.target):
            return safe_target(self.target)
        return str(Path(self.target).resolve())


def build_demo(app: Coursebook, clock: FixedClock, now: dt.datetime, *,
               seed: int = DEMO_SEED) -> tuple[ClinicScript, list[Result]]:
    """Applies the demo story to an initialised, empty store; `clock` is the store's.

    Each step is applied in valid-time order with the store's clock set a few minutes
    after its `at` (never past `now`), as if the clinic had recorded it then."""
    script = ClinicScript(now, app.zone, app.catalogue_in_force(), seed=seed)
    results: list[Result] = []
    recorded = clock.now()
    order = sorted(range(len(script.steps)), key=lambda i: (script.steps[i].at, i))
    for i in order:
        step = script.steps[i]
        recorded = max(recorded, min(step.at + step.recorded_after, now))
        clock.set(recorded)
        try:
            outcome = app.execute(step.body)
        except Rejected as error:
            results.append(Result(step, "rejected", str(error.code), error.message))
            continue
        results.append(Result(step, outcome.status))
    clock.set(now)
    return script, results


def _demo_files(target: str) -> list[Path]:
    """The default demo store and what lives beside it (SQLite journal, key file)."""
    path = Path(target)
    return [path, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal"),
            Path(f"{target}.key"), path.with_suffix(".key")]


def _refuse_existing(target: str) -> None:
    """An explicit target must not hold a store (nor be any other non-empty file)."""
    if is_postgres(target):
        if _holds_store(target):
            raise user_error(f"{safe_target(target)} already holds a coursebook store; the demo "
                             "builds only a new store")
        return
    path = Path(target)
    if path.is_dir():
        raise user_error(f"{target} is a directory; give a new file path for the demo store")
    if path.exists() and path.stat().st_size > 0:
        raise user_error(f"{target} already exists; the demo builds only a new store "
                         "(give a path that does not exist yet)")


def _holds_store(target: str) -> bool:
    """Whether `target` opens as a store as it is (nothing is created to find out)."""
    try:
        app = open_store(target)
    except StoreUnavailable:
        return False
    app.close()
    return True


def _remove_default_store(target: str) -> None:
    for path in _demo_files(target):
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise user_error(f"cannot replace the demo store: {path} "
                             f"({error.strerror or type(error).__name__})") from None


def _open(target: str, clock: FixedClock) -> Coursebook:
    """Creates the store (the target was checked to hold none: `_refuse_existing`)."""
    try:
        app = open_store(target, create=True, clock=clock)
    except StoreUnavailable as error:
        raise user_error(str(error), EXIT_STORE) from None
    app.initialise(DEMO_ZONE, "default@2")
    return app


def run_demo(ctx: Context, *, explicit_target: bool, clock: Clock | None = None) -> None:
    """The `demo` sub-command: build the sample clinic, then print its sections."""
    now = (clock or SystemClock()).now()
    if explicit_target:
        target = ctx.target
        _refuse_existing(target)
    else:
        target = DEMO_TARGET
        _remove_default_store(target)
    if ctx.log_stream is None:
        # Hundreds of command lines would bury the demo's output: keep only warnings,
        # unless the user asked for a log file.
        configure_logging(level=logging.WARNING)
    story_clock = FixedClock(now - dt.timedelta(days=400))
    app = _open(target, story_clock)
    try:
        script, results = build_demo(app, story_clock, now)
        run = DemoRun(app, target, now, script, results)
        document = {section.key: section.build(run) for section in SECTIONS}
        hints = [hint for section in SECTIONS for hint in section.hints(run)]
    finally:
        app.close()
    document["next"] = {"store": run.display_target, "try": hints}

    def render(console: Console) -> None:
        for section in SECTIONS:
            section.render(console, document[section.key])
            console.print()
        console.print(f"The demo store is [bold]{run.display_target}[/bold]. Try:")
        for hint in hints:
            console.print(f"  {hint}", highlight=False, soft_wrap=True)

    emit(ctx, document, render)
    unexpected = [r for r in results if not r.as_intended]
    if unexpected:
        click.echo(f"coursebook: {len(unexpected)} demo command(s) met an outcome other "
                   "than the one intended (see commands.unexpected)", err=True)
    raise SystemExit(EXIT_REJECTED if unexpected else EXIT_OK)


# -- the sections ------------------------------------------------------------------------
@attrs.frozen
class Section:
    """One part of the demo's output: a JSON value under `key`, and its table rendering."""

    key: str
    build: Callable[[DemoRun], Any]
    render: Callable[[Console, Any], None]
    hints: Callable[[DemoRun], list[str]] = lambda run: []


def _cli(run: DemoRun, *args: str) -> str:
    target = safe_target(run.target)  # the hints are printed: never with a password
    return "coursebook --db " + " ".join(shlex.quote(a) for a in (target, *args))


def _store_section(run: DemoRun) -> dict[str, Any]:
    return {"target": run.display_target, "timezone": DEMO_ZONE, "built_at": iso(run.now),
            "seed": DEMO_SEED, "courses": len(run.course_ids),
            "practitioners": [{"practitioner_id": s.practitioner_id, "role": s.role,
                               "license_expires_on": s.license_expires_on.isoformat(),
                               "license": _licence(s.license_expires_on, run)}
                              for s in run.script.staff]}


def _licence(expires_on: dt.date, run: DemoRun) -> str:
    days = (expires_on - run.script.today).days
    if days < 0:
        return "expired"
    return "expiring" if days <= 30 else "valid"


def _render_store(console: Console, data: dict[str, Any]) -> None:
    console.print(f"Demo clinic built at {_minute(data['built_at'])} ({data['timezone']} time; "
                  f"seed {data['seed']}): {data['courses']} courses.", highlight=False)
    console.print(table("Practitioners", ["id", "role", "licence until", "state"],
                        [[p["practitioner_id"], p["role"], p["license_expires_on"],
                          p["license"]] for p in data["practitioners"]]))


def _commands_section(run: DemoRun) -> dict[str, Any]:
    counts = Counter(r.outcome for r in run.results)
    rejected = [r for r in run.results if r.outcome == "rejected"]
    return {
        "sent": len(run.results),
        "applied": counts["applied"],
        "duplicates": counts["duplicate"],
        "rejected": len(rejected),
        "rejected_codes": dict(sorted(Counter(str(r.code) for r in rejected).items())),
        "rejections": [{"command": r.step.command, "command_id": r.step.body["command_id"],
                        "subject": r.step.subject, "at": iso(r.step.at), "code": r.code,
                        "message": r.message} for r in rejected],
        "unexpected": [{"command_id": r.step.body["command_id"], "intended": r.step.expect,
                        "outcome": r.outcome, "code": r.code}
                       for r in run.results if not r.as_intended],
    }


def _render_commands(console: Console, data: dict[str, Any]) -> None:
    console.print(f"Commands sent {data['sent']}: applied {data['applied']}, duplicates "
                  f"{data['duplicates']}, rejected {data['rejected']} (deliberately).",
                  highlight=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for r in data["rejections"]:
        grid.add_row(r["code"], r["subject"] or "-", Text(f"{r['command']}: {r['message']}"))
    console.print(grid)


def _courses_section(run: DemoRun) -> dict[str, Any]:
    by_status: Counter[str] = Counter()
    by_indication: dict[str, Counter[str]] = {}
    blocked: Counter[str] = Counter()
    for course_id in run.course_ids:
        state = run.app.get_course(course_id)
        by_status[state["status"]] += 1
        by_indication.setdefault(state["indication"], Counter())[state["status"]] += 1
        blocked.update(state["blocked_by"])
    return {"total": len(run.course_ids), "by_status": dict(sorted(by_status.items())),
            "by_indication": {ind: dict(sorted(c.items()))
                              for ind, c in sorted(by_indication.items())},
            "blocked_by": dict(sorted(blocked.items()))}


STATUSES = ("open", "active", "paused", "maintenance", "completed", "discontinued")
SHORT = {"skin_rejuvenation": "skin", "hair_restoration": "hair", "fat_reduction": "fat",
         "cellulite": "cellulite", "pigmentation": "pigmentation"}


def _render_courses(console: Console, data: dict[str, Any]) -> None:
    indications = list(data["by_indication"])
    rows = [[status, *[data["by_indication"][ind].get(status, "") for ind in indications],
             data["by_status"].get(status, 0)] for status in STATUSES]
    rows.append(["all", *[sum(data["by_indication"][ind].values()) for ind in indications],
                 data["total"]])
    console.print(table("Courses by status and indication",
                        ["status", *[SHORT.get(ind, ind) for ind in indications], "all"],
                        rows))
    if data["blocked_by"]:
        console.print("A session now would be refused for: " + ", ".join(
            f"{code} ({n})" for code, n in data["blocked_by"].items()), highlight=False)


def _featured_section(run: DemoRun) -> dict[str, Any]:
    state = dict(run.app.get_course(FEATURED_COURSE))
    state.pop("patient", None)  # personal data: never in the demo's output
    return {"course": state, "history": run.app.get_history(FEATURED_COURSE)}


ZONE = ZoneInfo(DEMO_ZONE)
"""The zone the demo clinic is initialised in: its tables show local times there, as the
rest of the command line does (the JSON document keeps UTC)."""


def _minute(timestamp: str | None) -> str:
    """`2026-03-04T10:30:00Z` as the clinic reads it: `2026-03-04 11:30` (local time)."""
    return local_time(timestamp, ZONE)


def _render_featured(console: Console, data: dict[str, Any]) -> None:
    d = data["course"]
    window = d["next"]
    next_text = "-" if window is None else (
        f"session {window['session_no']}: {window['earliest']} .. {window['target']} .. "
        f"{window['latest'] or 'open'}, planned {_minute(window['planned_at'])}")
    console.print(table(
        f"One course: {d['course_id']} ({d['indication']}; times in {ZONE.key})", ["", ""],
        [["status", d["status"]], ["version", d["version"]],
         ["sessions", f"{d['sessions_given']} given of {d['planned_sessions']} planned"],
         ["spacing", "{min_days}/{target_days}/{max_days} days".format(**d["spacing"])],
         ["next", next_text],
         ["absolute", ", ".join(d["contraindications"]["absolute"]) or "-"],
         ["relative", ", ".join(d["contraindications"]["relative"]) or "-"],
         ["overridden", ", ".join(d["contraindications"]["overridden"]) or "-"],
         ["blocked by", ", ".join(d["blocked_by"]) or "-"]]))
    console.print(f"[bold]History of {d['course_id']}[/bold] (version, valid time in "
                  f"{ZONE.key}, actor, what happened):")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for h in data["history"]:
        grid.add_row(str(h["version"]), _minute(h["at"]), h["actor"],
                     Text(h["summary"]))
    console.print(grid)


def _featured_hints(run: DemoRun) -> list[str]:
    history = run.app.get_history(FEATURED_COURSE)
    middle = history[len(history) // 2]
    return [_cli(run, "course", "show", FEATURED_COURSE),
            _cli(run, "course", "history", FEATURED_COURSE),
            _cli(run, "course", "show", FEATURED_COURSE, "--as-of", str(middle["at"])),
            _cli(run, "course", "show", FEATURED_COURSE, "--known-at",
                 str(middle["recorded_at"])),
            _cli(run, "--format", "json", "course", "show", "demo-hair-02")]


CALENDAR_WEEKS = 4
"""How far ahead the demo's calendar looks."""


def _calendar_section(run: DemoRun) -> dict[str, Any]:
    """The calendar of the coming weeks, from the calendar view (caught up first)."""
    start = run.script.today
    end = start + dt.timedelta(weeks=CALENDAR_WEEKS)
    entries = run.app.calendar(start, end)
    return {"from": start.isoformat(), "to": end.isoformat(), "sessions": len(entries),
            "planned": sum(e["planned_at"] is not None for e in entries),
            "blocked": sum(bool(e["blocked_by"]) for e in entries), "entries": entries}


def _render_calendar(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold]Calendar {data['from']} .. {data['to']}[/bold]: "
                  f"{data['sessions']} sessions to book ({data['planned']} planned, "
                  f"{data['blocked']} blocked). When (times in {ZONE.key}, or the target day "
                  "while unplanned), course, session, window, practitioner, cautions, blocks:")
    grid = Table.grid(padding=(0, 2))
    for _ in range(4):
        grid.add_column(no_wrap=True)
    grid.add_column()
    for e in data["entries"]:
        when = _minute(e["planned_at"]) if e["planned_at"] else f"{e['target']} (target)"
        window = f"{e['earliest'][5:]}..{(e['latest'] or 'open')[5:] or 'open'}"
        notes = [e["practitioner_id"] or "unassigned", *e["cautions"],
                 *(f"BLOCKED {code}" for code in e["blocked_by"])]
        grid.add_row(when, e["course_id"], f"#{e['session_no']}", window,
                     Text(", ".join(notes)))
    console.print(grid)


def _calendar_hints(run: DemoRun) -> list[str]:
    start = run.script.today
    end = start + dt.timedelta(weeks=CALENDAR_WEEKS)
    return [_cli(run, "calendar", "--from", start.isoformat(), "--to", end.isoformat(),
                 "--ics", "coursebook-demo.ics"),
            _cli(run, "audit", "--course", FEATURED_COURSE),
            _cli(run, "projections", "status")]


def demo_html_path(run: DemoRun) -> Path:
    """Where the demo writes its compliance page: beside a SQLite store, else here."""
    if is_postgres(run.target):
        return Path("coursebook-demo.html").resolve()
    return Path(run.target).resolve().with_suffix(".html")


def _compliance_section(run: DemoRun) -> dict[str, Any]:
    """The compliance summary as of now, and the reviewer's HTML page written to a file."""

    report = run.app.compliance_report(run.now)
    path = demo_html_path(run)
    try:  # the demo's own page, replaced each run; never the store, never through a link
        write_export(path, report.html(), run.target, force=True, option="demo page")
    except ExportRefused as error:
        raise user_error(error.message) from None
    document = report.document()
    return {"as_of": document["as_of"], "courses": document["courses"],
            "findings": len(document["findings"]),
            "counts": [{"code": code, "severity": severity, "count": n}
                       for code, severity, n in report.counts()],
            "html": str(path)}


def _render_compliance(console: Console, data: dict[str, Any]) -> None:
    rows = [[c["code"], c["severity"], c["count"]] for c in data["counts"]]
    console.print(table(f"Compliance as of {_minute(data['as_of'])} ({ZONE.key}): "
                        f"{data['findings']} findings over {data['courses']} courses",
                        ["code", "severity", "count"],
                        rows))
    console.print(f"The reviewer's page (findings and spacing timelines): {data['html']}",
                  markup=False, highlight=False)


def _compliance_hints(run: DemoRun) -> list[str]:
    as_of = (run.now - dt.timedelta(days=60)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_cli(run, "compliance", "--as-of", as_of),
            _cli(run, "compliance", "--html", "coursebook-demo-compliance.html"),
            _cli(run, "verify")]


SECTIONS: list[Section] = [
    Section("store", _store_section, _render_store),
    Section("commands", _commands_section, _render_commands),
    Section("courses", _courses_section, _render_courses),
    Section("featured", _featured_section, _render_featured, _featured_hints),
    Section("calendar", _calendar_section, _render_calendar, _calendar_hints),
    Section("compliance", _compliance_section, _render_compliance, _compliance_hints),
]
"""The demo's output, in order. Append a `Section` to show more (calendar, compliance)."""


def iso(instant: dt.datetime) -> str:
    """A timestamp as the outputs show it: UTC with a `Z`."""
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
