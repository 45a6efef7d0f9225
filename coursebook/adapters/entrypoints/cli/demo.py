"""`coursebook demo`: a realistic sample clinic in a fresh store (see adapters/demo.py)."""

from __future__ import annotations

import click

from coursebook.adapters.entrypoints.cli.common import Context


def register(cli: click.Group) -> None:
    cli.add_command(demo)


@click.command()
@click.pass_context
def demo(click_ctx: click.Context) -> None:
    """Build a sample clinic in a fresh store and show what the engine knows about it."""
    from coursebook.adapters.entrypoints.demo import run_demo

    ctx: Context = click_ctx.obj
    explicit = click_ctx.parent is not None and \
        click_ctx.parent.get_parameter_source("target") == click.core.ParameterSource.COMMANDLINE
    run_demo(ctx, explicit_target=explicit)
