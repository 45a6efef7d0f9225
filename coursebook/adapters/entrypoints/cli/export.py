"""`coursebook export fhir FILE`: courses as one HL7 FHIR R4 Bundle (docs/fhir.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click
import orjson

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_REJECTED,
    Context,
    emit,
    not_found,
    timestamp_option_value,
    user_error,
)
from coursebook.errors import Code, Rejected


def register(cli: click.Group) -> None:
    cli.add_command(export)


def refuse_target(option: str, path: str, *, force: bool, store: str | None = None) -> None:
    """A usage error naming `option` if `path` is a symbolic link, is the SQLite `store`
    or its key file (whatever `force` says), or exists and `force` was not given
    (checked before any work, and again when writing)."""
    target = Path(path)
    if store is not None and "://" not in store:
        kept = {Path(store).resolve(), Path(store + ".key").resolve()}
        if target.resolve() in kept:
            raise user_error(f"{option}: {path} is the store or its key; not written")
    if target.is_symlink():
        raise user_error(f"{option}: {path} is a symbolic link; not written")
    if target.exists() and not force:
        raise user_error(f"{option}: {path} exists; pass --force to replace it")


def write_new_file(option: str, path: str, content: bytes, what: str, *,
                   force: bool) -> None:
    """Writes an export to `path` (owner-only permissions when created): never through a
    symbolic link, never over an existing file unless `force`; an unwritable path is a
    usage error naming `option`.

    (Kept small and apart so that it can give way to the shared export-safety helpers.)"""
    target = Path(path)
    refuse_target(option, path, force=force)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    if not force:
        flags |= os.O_EXCL
    try:
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    except FileExistsError:
        raise user_error(f"{option}: {path} exists; pass --force to replace it") from None
    except OSError as error:
        raise user_error(f"{option}: cannot write {path}: {error.strerror}") from None
    click.echo(f"coursebook: wrote {what} to {path}", err=True)


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
              help="Replace FILE if it exists.")
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
    refuse_target("FILE", file, force=force, store=ctx.target)
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
    write_new_file("FILE", file, orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n",
                   f"a FHIR bundle of {courses} course(s), {len(entries)} resources",
                   force=force)
    summary = {"file": file, "courses": courses, "resources": len(entries),
               "include_personal": include_personal}
    emit(ctx, summary, lambda console: console.print(
        f"{courses} course(s), {len(entries)} resources", markup=False, highlight=False))
