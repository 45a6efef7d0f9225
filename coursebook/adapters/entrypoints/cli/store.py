"""`coursebook init`: create the store (idempotent) with its clinic time zone."""

from __future__ import annotations

import os
from pathlib import Path

import click

from coursebook.adapters.entrypoints.cli.common import EXIT_USAGE, Context, emit, user_error
from coursebook.errors import Rejected


def register(cli: click.Group) -> None:
    cli.add_command(init)


def machine_zone() -> str | None:
    """This machine's IANA zone name, when it can be told (`$TZ`, else /etc/localtime)."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            link = os.readlink("/etc/localtime")
        except OSError:
            return None
        name = link.partition("zoneinfo/")[2]
    return name if _is_zone(name) else None


def _is_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


def _new_files(target: str) -> list[Path]:
    """The files `init` would create for a SQLite target that does not exist yet."""
    if "://" in target or Path(target).exists():
        return []
    paths = [Path(target + suffix) for suffix in ("", "-wal", "-shm", "-journal", ".key")]
    return [path for path in paths if not path.exists()]


@click.command()
@click.option("--timezone", default=None, metavar="NAME",
              help="IANA zone of the clinic, e.g. Europe/Paris (default UTC, said on "
                   "standard error); fixed once the store exists.")
@click.option("--catalogue", default=None, metavar="REF",
              help="Catalogue a new store adopts: default@1, default@2 or a TOML file "
                   "(default: the newest default@N). On an existing store it must name "
                   "the catalogue in force.")
@click.pass_obj
def init(ctx: Context, timezone: str | None, catalogue: str | None) -> None:
    """Create the store (idempotent; never changes the zone or the catalogue of an
    existing store).

    A failed init leaves nothing behind: no store file, no key file.
    """
    if timezone is not None and not _is_zone(timezone):
        raise user_error(f"--timezone: {timezone!r} is not an IANA time zone name",
                         EXIT_USAGE, hint="e.g. Europe/Paris, America/New_York, UTC")
    new_files = _new_files(ctx.target)
    created = False
    try:
        with ctx.store(create=True) as app:
            created = not app.is_initialised()
            try:
                zone = app.initialise(timezone, catalogue)
                in_force = app.catalogue()
            except Rejected as error:
                raise user_error(error.message, EXIT_USAGE) from None
    except BaseException:
        for path in new_files:  # this init made them: leave nothing half made
            path.unlink(missing_ok=True)
        raise
    from coursebook.bootstrap import safe_target

    shown = safe_target(ctx.target)  # never a password
    if created and timezone is None:
        here = machine_zone()
        hint = (f"; this machine's zone is {here}: for it, remove {shown} (and its "
                f"key file) and run `coursebook init --timezone {here}`"
                if here and here != "UTC" else "")
        click.echo(f"coursebook: no --timezone given: the clinic zone is UTC, fixed for "
                   f"this store{hint}", err=True)
    ref = f"{in_force['name']}@{in_force['version']}"
    emit(ctx, {"store": shown, "timezone": zone,
               "catalogue": {key: in_force[key] for key in ("name", "version", "digest")}},
         lambda console: console.print(f"store {shown} ready, clinic zone {zone}, "
                                       f"catalogue {ref}"))
