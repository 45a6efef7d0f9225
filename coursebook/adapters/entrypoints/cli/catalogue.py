"""`coursebook catalogue show|adopt`: the rules in force, and adopting others."""

from __future__ import annotations

from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    table,
    user_error,
)
from coursebook.errors import Rejected


def register(cli: click.Group) -> None:
    cli.add_command(catalogue)


@click.group()
def catalogue() -> None:
    """The catalogue of protocols and safety parameters: show it, adopt another."""


def _render(document: dict[str, Any]) -> Any:
    def render(console: Any) -> None:
        rows = [["catalogue", f"{document['name']}@{document['version']}"],
                ["digest", document["digest"]],
                ["adopted at", document.get("adopted_at") or "-"]]
        for name, value in document.get("safety", {}).items():
            rows.append([name, ", ".join(value) if isinstance(value, list) else
                         str(value)])
        for indication in document.get("protocols", {}):
            rows.append(["protocol", indication])
        console.print(table("Catalogue", ["", ""], rows))
    return render


@catalogue.command()
@click.argument("ref", required=False)
@click.pass_obj
def show(ctx: Context, ref: str | None) -> None:
    """The catalogue in force, or REF (default@1, default@2 or a TOML file)."""
    with ctx.store() as app:
        try:
            document = app.catalogue(ref)
        except Rejected as error:
            raise user_error(error.message, EXIT_USAGE) from None
    emit(ctx, document, _render(document))


@catalogue.command()
@click.argument("ref")
@click.option("--actor", required=True, help="Who decides the adoption.")
@click.option("--reason", required=True, help="Why (at least 10 characters).")
@click.pass_obj
def adopt(ctx: Context, ref: str, actor: str, reason: str) -> None:
    """Adopt REF from now on: courses opened afterwards are under it for life; courses
    already open keep theirs. Adopting the catalogue in force changes nothing."""
    with ctx.store() as app:
        try:
            document = app.adopt_catalogue(ref, actor=actor, reason=reason)
        except Rejected as error:
            raise user_error(error.message, EXIT_USAGE) from None
    emit(ctx, document, _render(document))
