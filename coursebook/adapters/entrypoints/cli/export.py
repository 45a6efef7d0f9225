"""`coursebook export fhir FILE`: courses as one HL7 FHIR R4 Bundle (docs/fhir.md)."""

from __future__ import annotations

import click
import orjson

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_REJECTED,
    Context,
    check_export_path,
    emit,
    not_found,
    timestamp_option_value,
    write_export,
)
from coursebook.errors import Code, Rejected


def register(cli: click.Group) -> None:
    cli.add_command(export)


@click.group()
def export() -> None:
    """Exports of the store for other systems."""


@export.command()
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--course", "course_ids", metavar="ID", multiple=True,
              help="Only this course (repeat for several; default: every course).")
@click.option("--as-of", "as_of", metavar="TS", default=None,
              help="Valid time: the courses as they stood at TS.")
@click.option("--known-at", "known_at", metavar="TS", default=None,
              help="Record time: only from the events recorded at or before TS.")
@click.option("--include-personal", is_flag=True, default=False,
              help="Also export personal data (names, birth dates, screening answers, "
                   "notes); never an erased patient's.")
@click.option("--force", is_flag=True, default=False,
              help="Replace FILE if it exists (never the store, its key, or a symlink).")
@click.pass_obj
def fhir(ctx: Context, file: str, course_ids: tuple[str, ...], as_of: str | None,
         known_at: str | None, include_personal: bool, force: bool) -> None:
    """Write the courses as one HL7 FHIR R4 Bundle (type collection, JSON) to FILE.

    Each course gives a CarePlan, its Appointments, Procedures with the Medications and
    lots used, AdverseEvents, DetectedIssues with overrides, Consents, and a Provenance
    per recorded event (record and valid time); practitioners come with their licences.
    Without --include-personal the Patient carries only its pseudonymous reference.
    """
    as_of_ts = timestamp_option_value(as_of, "--as-of")
    known_at_ts = timestamp_option_value(known_at, "--known-at")
    check_export_path("FILE", file, force=force)  # before the work; again when writing
    with ctx.store() as app:
        try:
            bundle = app.export_fhir(course_ids or None, as_of=as_of_ts, known_at=known_at_ts,
                                     include_personal=include_personal)
        except Rejected as error:
            if error.code != Code.NOT_FOUND:
                raise
            not_found(ctx, error)
            raise SystemExit(EXIT_REJECTED) from None
    entries = bundle.get("entry", [])
    courses = sum(1 for e in entries if e["resource"]["resourceType"] == "CarePlan")
    write_export("FILE", file, orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n",
                 f"a FHIR bundle of {courses} course(s), {len(entries)} resources",
                 force=force)
    summary = {"file": file, "courses": courses, "resources": len(entries),
               "include_personal": include_personal}
    emit(ctx, summary, lambda console: console.print(
        f"{courses} course(s), {len(entries)} resources", markup=False, highlight=False))
