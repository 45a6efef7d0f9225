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
@click.option("--catalogue", default=None, metavar="REF",
              help="Catalogue a new store adopts: default@1, default@2 or a TOML file "
                   "(default: the newest default@N). On an existing store it must name "
                   "the catalogue in force.")
@click.pass_obj
def init(ctx: Context, timezone: str | None, catalogue: str | None) -> None:
    """Create the store (idempotent; never changes the zone or the catalogue of an
    existing store)."""
    with ctx.store(create=True) as app:
        try:
            zone = app.initialise(timezone, catalogue)
            in_force = app.catalogue()
        except Rejected as error:
            raise user_error(error.message, EXIT_USAGE) from None
    ref = f"{in_force['name']}@{in_force['version']}"
    emit(ctx, {"store": ctx.target, "timezone": zone,
               "catalogue": {key: in_force[key] for key in ("name", "version", "digest")}},
         lambda console: console.print(f"store {ctx.target} ready, clinic zone {zone}, "
                                       f"catalogue {ref}"))
