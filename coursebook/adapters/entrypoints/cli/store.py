"""`coursebook init`: create the store (idempotent) with its clinic time zone."""

from __future__ import annotations

import click

from coursebook.adapters.entrypoints.cli.common import EXIT_USAGE, Context, emit, user_error
from coursebook.errors import Rejected


def register(cli: click.Group) -> None:
    cli.add_command(init)


@click.command()
@click.option("--timezone", default=None, metavar="NAME",
              help="IANA zone of the clinic (default UTC); fixed once the store exists.")
@click.pass_obj
def init(ctx: Context, timezone: str | None) -> None:
    """Create the store (idempotent; never changes the zone of an existing store)."""
    with ctx.store(create=True) as app:
        try:
            zone = app.initialise(timezone)
        except Rejected as error:
            raise user_error(error.message, EXIT_USAGE) from None
    from coursebook.bootstrap import safe_target

    shown = safe_target(ctx.target)  # never a password
    emit(ctx, {"store": shown, "timezone": zone},
         lambda console: console.print(f"store {shown} ready, clinic zone {zone}"))
